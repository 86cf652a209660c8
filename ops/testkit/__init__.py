"""What tests and benchmarks share: fake Real Geeks and ElevenLabs servers (fakes/), workers
as subprocesses and topic readers (support.py), the dialer's test settings (dialer.py)."""
