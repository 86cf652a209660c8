"""Backfill: a Real Geeks export through the same pipeline; a second run creates nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.testkit.support import PYTHON, ROOT, Worker, unique
from tests.integration.helpers import outputs

pytestmark = pytest.mark.integration


def test_backfill_twice_creates_nothing_new(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Path
) -> None:
    w = start_worker()
    site = unique("site")
    export = tmp_path / "export.csv"
    export.write_text(
        "Lead ID,First Name,Last Name,Email,Phone,Address,City,State,Zip,Lead Type,Source\n"
        f"{unique('l')},Mary,Kahale,mary.k@example.com,(808) 555-0101,1 Beach Rd,Kailua,HI,96734,Buyer,Zillow\n"
        f"{unique('l')},Mary,Kahale,MARY.K@example.com,808.555.0101,1 Beach Road,Kailua,HI,96734,Buyer,Facebook\n"
        f"{unique('l')},Tom,Ng,tom@example.com,,,,,,Seller,Website\n"
        ",,,,,,,,,,\n"
    )
    cmd = [PYTHON, "-m", "realgeeks_sync.app.cli", "backfill", str(export), "--site-uuid", site]
    first = subprocess.run(cmd, cwd=ROOT, env=w.env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stderr.strip().splitlines()[-1])
    assert summary == {**summary, "rows": 4, "sent": 3, "invalid": 1, "failed": 0}
    events = outputs(kafka_bootstrap, w, "leads.normalized", count=3, timeout=40)
    assert sorted(e["op"] for e in events) == ["created", "created", "merged"]
    second = subprocess.run(cmd, cwd=ROOT, env=w.env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    # A marker after the second run: once it is out, everything before it was processed.
    marker = tmp_path / "marker.jsonl"
    marker.write_text(json.dumps({"id": unique("m"), "email": "marker@example.com"}) + "\n")
    subprocess.run(
        [PYTHON, "-m", "realgeeks_sync.app.cli", "backfill", str(marker), "--site-uuid", site],
        cwd=ROOT,
        env=w.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    after = outputs(kafka_bootstrap, w, "leads.normalized", count=4, timeout=40)
    assert len(after) == 4
    contexts = outputs(kafka_bootstrap, w, "calls.context", count=3, timeout=20)
    assert contexts and all(c["trigger"] == "backfill" for c in contexts)
