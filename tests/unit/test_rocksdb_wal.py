"""Table partitions are written without RocksDB's WAL (app/streaming/rocksdb_wal.py): what
a clean stop leaves is read back; what a crash loses is the changelog's to give back."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions

from realgeeks_sync.app.streaming import rocksdb_wal

ROOT = Path(__file__).resolve().parents[2]


def _wal_bytes(db_dir: Path) -> int:
    return sum(f.stat().st_size for f in db_dir.glob("*.log"))


def test_writes_leave_no_wal_and_survive_a_clean_stop(tmp_path: Path) -> None:
    rocksdb_wal.install()
    rocksdb_wal.install()  # twice: still one wrapper
    options = RocksDBOptions(use_rocksdict=True)
    db = options.open(tmp_path / "t.db")
    for i in range(500):
        db.put(b"k%d" % i, b"v" * 100)
    assert _wal_bytes(tmp_path / "t.db") == 0
    del db
    gc.collect()  # as Faust's Store.stop and revoke_partitions let go of a partition
    again = options.open(tmp_path / "t.db")
    assert again.get(b"k499") == b"v" * 100


def test_a_crash_loses_only_what_no_flush_wrote(tmp_path: Path) -> None:
    # Without a WAL the unflushed writes are gone after a crash, and the store opens clean:
    # Faust's recovery reads the changelog on from the offset kept with the flushed data.
    code = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from faust.stores.rocksdb import RocksDBOptions\n"
        "from realgeeks_sync.app.streaming import rocksdb_wal\n"
        "rocksdb_wal.install()\n"
        f"db = RocksDBOptions(use_rocksdict=True).open({str(tmp_path / 'c.db')!r})\n"
        "db.put(b'x', b'1')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
    db = RocksDBOptions(use_rocksdict=True).open(tmp_path / "c.db")
    assert db.get(b"x") is None
