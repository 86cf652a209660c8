"""realgeeks-sync: Real Geeks CRM <-> ElevenLabs voice-AI sync on faust-streaming and Kafka.

One import name for the whole distribution, so its parts never collide with other
projects' (``tables`` is also PyTables'): ``realgeeks_sync.app`` (the service in layers),
``realgeeks_sync.agents`` (stream agents) and ``realgeeks_sync.tables`` (table
declarations). In the repository those folders stay at the top, where the design card puts
them; an installed wheel holds them inside this package (pyproject.toml's package-dir).
"""

from pathlib import Path

_here = Path(__file__).resolve().parent
if not (_here / "app").is_dir():
    # A source checkout: app/, agents/ and tables/ sit beside this folder.
    __path__.append(str(_here.parent))
