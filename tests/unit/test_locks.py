"""The lock files: every dependency pinned with hashes, in step with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from ops.testkit.support import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = ROOT / "ops" / "requirements.lock"
TEST = ROOT / "ops" / "requirements-test.lock"


def pins(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for every requirement in a lock file."""
    text = path.read_text()
    found: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        line = block.strip().splitlines()[0] if block.strip() else ""
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line)
        assert match, f"not pinned with ==: {line}"
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        found[name] = (match.group(2), block.count("--hash=sha256:"))
    return found


def _name(requirement: Requirement) -> str:
    return re.sub(r"[-_.]+", "-", requirement.name).lower()


@pytest.mark.parametrize("path", [RUNTIME, TEST])
def test_every_pin_is_exact_and_hashed(path: Path) -> None:
    locked = pins(path)
    assert locked
    assert all(hashes >= 1 for _version, hashes in locked.values()), [
        name for name, (_v, h) in locked.items() if not h
    ]


def test_locks_follow_pyproject() -> None:
    runtime, test = pins(RUNTIME), pins(TEST)
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        version, _ = runtime[_name(requirement)]
        assert requirement.specifier.contains(version), f"{spec}: locked {version}"
    for spec in PYPROJECT["project"]["optional-dependencies"]["test"]:
        requirement = Requirement(spec)
        version, _ = test[_name(requirement)]
        assert requirement.specifier.contains(version), f"{spec}: locked {version}"
    # The test lock installs the same runtime versions the image runs.
    assert {n: v for n, (v, _h) in runtime.items()} == {
        n: v for n, (v, _h) in test.items() if n in runtime
    }


def test_aiohttp_is_past_the_published_advisories() -> None:
    for path in (RUNTIME, TEST):
        assert Version(pins(path)["aiohttp"][0]) >= Version("3.14.3")


def test_install_uses_the_lock_with_hashes() -> None:
    install = (ROOT / "ops" / "install").read_text()
    assert "--require-hashes -r ops/requirements-test.lock" in install
    assert "--no-deps -e ." in install
