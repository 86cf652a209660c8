"""After the integration tests: no email, phone number or secret in any worker's log.

Named to run last in tests/integration (pytest keeps file order), so it scans the logs of
every worker the session started.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+\.[A-Za-z]{2,}")
PHONES = [
    re.compile(r"\+\d{10,14}\b"),  # E.164
    re.compile(r"\(\d{3}\)\s?\d{3}[-. ]\d{4}"),  # (808) 555-0101
    re.compile(r"\b\d{3}[-.]\d{3}[-.]\d{4}\b"),  # 808-817-2382, 808.555.0101
]
ROCKSDB_WAL = re.compile(r"^\d{6}\.log$")
SECRETS = ["test-secret", "el-secret", "seekrit", "rg-password", "el-test-key", "Bearer tok"]


def test_worker_logs_hold_no_pii_or_secrets(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    # Our workers' logs; Prometheus' own log carries its packager's address, and RocksDB's
    # write-ahead logs (000004.log) are table data, not logs.
    logs = [
        p
        for p in base.rglob("*.log")
        if p.is_file() and not p.name.startswith("prometheus") and not ROCKSDB_WAL.match(p.name)
    ]
    if not logs:
        pytest.skip("no worker logs in this session (run with the integration tests)")
    findings: list[str] = []
    for path in logs:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            hits = [m.group(0) for m in EMAIL.finditer(line)]
            hits += [m.group(0) for rx in PHONES for m in rx.finditer(line)]
            hits += [s for s in SECRETS if s in line]
            if hits:
                findings.append(f"{path.name}:{n}: {hits[:3]}")
    assert not findings, f"{len(findings)} log lines leak PII or secrets:\n" + "\n".join(
        findings[:20]
    )
