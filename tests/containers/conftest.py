"""The container tier (`ops/test --containers`): the compose stack on the project's engine."""

from __future__ import annotations

import pytest

from tests.containers.stack import MEASURED

__all__: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the container tests measured (end-to-end latency through compose)."""
    if MEASURED:
        terminalreporter.section("container tier measurements")
        for line in MEASURED:
            terminalreporter.write_line(line)
