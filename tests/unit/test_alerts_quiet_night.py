"""Alarms that mean something: the error-ratio alert on a quiet night and on a busy day.

Runs `promtool test rules` on ops/monitoring/alerts.yml (promtool comes with
`ops/prometheus install`, which ops/test runs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.support import ROOT

ALERTS_YML = ROOT / "ops" / "monitoring" / "alerts.yml"
ALERT = "RealGeeksSyncErrorRateHigh"
SUMMARY = "Sync errors above 5% of processed webhooks for 10 minutes"


def _description() -> str:
    text = ALERTS_YML.read_text()
    block = text.split(f"- alert: {ALERT}\n", 1)[1].split("- alert:", 1)[0]
    line = next(x for x in block.splitlines() if x.strip().startswith("description:"))
    return line.split("description:", 1)[1].strip().strip("'")


def _firing() -> list[dict[str, Any]]:
    return [
        {
            "exp_labels": {"severity": "warning"},
            "exp_annotations": {"summary": SUMMARY, "description": _description()},
        }
    ]


def _case(series: dict[str, str], expected: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": at, "alertname": ALERT, "exp_alerts": _firing() if fires else []}
            for at, fires in expected
        ],
    }


PROCESSED = 'realgeeks_webhooks_processed_total{source="realgeeks",action="created"}'
SKIPPED = 'realgeeks_sync_errors_total{error_type="ConsumerSkippedOffsets"}'
WRITES = 'realgeeks_sync_errors_total{error_type="KafkaWriteError"}'

CASES = {
    # The night: nothing processed for hours while an idle worker counted 66
    # "skipped offsets" in 4 minutes (about 16 a minute). The old rule divided that by a
    # floor of 0.01/s and fired after 10 minutes.
    "quiet night, idle worker counting errors": _case(
        {PROCESSED: "500x240", SKIPPED: "0+16x240"},
        [("15m", False), ("60m", False), ("4h", False)],
    ),
    # A trickle: a webhook every 5 minutes and one error an hour.
    "quiet night, a trickle of traffic and one error": _case(
        {PROCESSED: "0+0.2x240", WRITES: "0x59 1x180"},
        [("65m", False), ("75m", False)],
    ),
    # Busy: 100 processed a minute, 10 errors a minute: 10 % for more than 10 minutes fires.
    "busy day, 10% errors": _case(
        {PROCESSED: "0+100x60", WRITES: "0+10x60"},
        [("8m", False), ("20m", True), ("40m", True)],
    ),
    # Busy with 1 % errors: below the threshold.
    "busy day, 1% errors": _case(
        {PROCESSED: "0+100x60", WRITES: "0+1x60"},
        [("20m", False), ("40m", False)],
    ),
}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not installed (ops/prometheus install provides it)")
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.mark.parametrize("name", list(CASES))
def test_error_ratio_alert(name: str, tmp_path: Path) -> None:
    spec = {
        "rule_files": [str(ALERTS_YML)],
        "evaluation_interval": "1m",
        "tests": [CASES[name]],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(json.dumps(spec))
    result = promtool("test", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
