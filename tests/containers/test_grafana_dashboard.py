"""The Grafana dashboard passes a linter (Grafana has no Debian package to load it into).

ops/dashboard-lint checks the JSON strictly against Grafana's generated schema types
(grafana-foundation-sdk) and panel rules; part of the container tier (`ops/test
--containers`), which builds it with Go.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from ops.testkit.support import ROOT

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(
        os.environ.get("RGSYNC_TEST_CONTAINERS") != "1",
        reason="container tier: ops/test --containers",
    ),
]

DASHBOARD = ROOT / "ops" / "monitoring" / "grafana" / "dashboards" / "realgeeks-sync.json"
DATASOURCES = ROOT / "ops" / "monitoring" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    # The provisioned datasource's uid (one datasource; PyYAML is not a dependency).
    match = re.search(r"^\s+uid:\s*(\S+)\s*$", DATASOURCES.read_text(), re.M)
    assert match, DATASOURCES
    uid = match.group(1)
    return subprocess.run(
        [str(ROOT / "ops" / "dashboard-lint"), "-datasource-uid", uid, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dashboard_passes_the_linter() -> None:
    result = lint(DASHBOARD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("realgeeks-sync.json: ok")


def test_the_linter_finds_schema_and_rule_violations(tmp_path: Path) -> None:
    """So a passing lint means something: each kind of mistake in a copy is reported."""
    doc = json.loads(DASHBOARD.read_text())
    series = next(p for p in doc["panels"] if p["type"] == "timeseries")
    series["targets"][0]["expr"] = "rate(realgeeks_webhooks_received_total[5m])"
    series["fieldConfig"]["defaults"].pop("unit")
    series["datasource"] = {"type": "prometheus", "uid": "elsewhere"}
    doc["panels"][0]["optoins"] = {}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    result = lint(broken)
    assert result.returncode == 1
    for rule in ("[schema]", "[panel-rate-interval]", "[panel-units]", "[panel-datasource]"):
        assert rule in result.stdout, (rule, result.stdout)
    assert "unexpected field 'optoins'" in result.stdout
