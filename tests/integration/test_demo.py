"""ops/demo from this checkout: leads flow to the dashboard, Ctrl-C stops what it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from ops.testkit.support import ROOT, free_port, port_open, unique


def test_the_demo_shows_leads_called_and_written_back_and_stops_on_ctrl_c(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port(neighbours=(15, 16))  # the fakes' ports
    prefix = unique("demo") + "."
    env = {k: v for k, v in os.environ.items() if not k.startswith("RGSYNC_")}
    env.update(
        RGSYNC_KAFKA_URL=f"kafka://{kafka_bootstrap}",
        RGSYNC_DEMO_PORT=str(port),
        RGSYNC_DEMO_EVERY_S="1",
        RGSYNC_TOPIC_PREFIX=prefix,
        RGSYNC_APP_ID=prefix.rstrip("."),
    )
    from ops.testkit.support import PREFIXES_IN_USE

    PREFIXES_IN_USE.append(prefix)  # its topics are deleted after the test
    out = (tmp_path / "demo.out").open("w+")
    demo = subprocess.Popen(
        [str(ROOT / "ops" / "demo")],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # As from a terminal: a shell that starts with SIGINT ignored (a test run started in
        # the background inherits that) cannot trap it, and Ctrl-C would do nothing.
        preexec_fn=_interruptible,
    )
    try:
        token = None
        deadline = time.monotonic() + 180
        while token is None and time.monotonic() < deadline:
            assert demo.poll() is None, (tmp_path / "demo.out").read_text()[-3000:]
            found = re.search(r"admin token  (\S+)", (tmp_path / "demo.out").read_text())
            token = found.group(1) if found else None
            time.sleep(0.5)
        text = (tmp_path / "demo.out").read_text()
        assert token and f"http://127.0.0.1:{port}/ui/" in text, text[-3000:]
        figures: dict[str, int] = {}
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/ui/", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                page = response.read().decode()
            figures = {
                label: int(value)
                for label, value in re.findall(
                    r"<span class=\"muted\">(Leads today|Calls placed|Tours requested)</span>"
                    r"<b>(\d+)</b>",
                    page,
                )
            }
            if figures.get("Leads today", 0) >= 3 and figures.get("Calls placed", 0) >= 2:
                break
            time.sleep(2)
        assert figures.get("Leads today", 0) >= 3 and figures.get("Calls placed", 0) >= 2, figures
        assert "Honolulu team" in page and "Austin team" in page
        # Written back to the (fake) Real Geeks: the worker posted the calls' activities.
        posted: list = []
        while not posted and time.monotonic() < deadline:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port + 15}/_fake/state", timeout=10
            ) as response:
                state = json.loads(response.read())
            posted = [
                r
                for r in state["requests"]
                if r["path"].endswith("/activities") and r["status"] == 200
            ]
            time.sleep(1)
        assert posted, state
        log = (ROOT / "var" / "demo" / "worker.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    assert "ops/demo: stopped" in (tmp_path / "demo.out").read_text()
    for n in (0, 15, 16):
        assert not port_open("127.0.0.1", port + n), f"port {port + n} still served"
    left = subprocess.run(["pgrep", "-g", str(demo.pid)], capture_output=True, text=True)
    assert not left.stdout.strip(), f"left running: {left.stdout}"


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
