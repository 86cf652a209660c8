"""This worker's copy of every lead's numbers and call variables, from ``sync.callers``.

Why a copy on every worker: ElevenLabs' pre-call webhook names only the called agent and
the caller's number, and must be answered within a tight bound (aim: p99 < 50 ms), by
whichever worker the request reaches. The identity index is partitioned by site, and
which site the number belongs to is exactly what is not known; asking every worker would
tie the answer to the slowest of them and to every rebalance. So each worker reads the
compacted ``sync.callers`` topic (one record per lead, written with its call context) in
full, with a consumer of its own outside the consumer group, into a local RocksDB:

    n|<E.164>            JSON list of "<site_uuid>:<lead_id>" carrying that number
    l|<site>:<lead>      the caller.v1 record (numbers, variables, as_of, last call)
    o|<partition>        the next offset to read (written with the records it follows)

A lookup is two or three RocksDB reads, on the worker that got the request, rebalance or
not. The copy survives restarts (offsets are kept with the records) and is rebuilt from
the topic when it does not match it (a new topic, a truncated one). Memory stays under
the shared RocksDB budget (app/streaming/rocksdb_memory.py); disk grows with the leads
(about a kilobyte each).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import rocksdict
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.callers import Candidate
from realgeeks_sync.app.streaming import rocksdb_memory, rocksdb_wal
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.kafka_config import librdkafka_config

__all__ = ["CallerDirectory", "DirectoryReader", "directory_path"]

log = logging.getLogger(__name__)

# consume() returns when it has _BATCH records or after _BATCH_WAIT_S: a record read
# alone (light traffic) waits at most that long for others, not poll()'s half second.
_BATCH = 500
_BATCH_WAIT_S = 0.05


def directory_path(settings: Settings, role: str) -> Path:
    """Where a process keeps its copy: one per process role ("worker", "ingress-<port>"),
    so a worker and an ingress on one host never open the same RocksDB."""
    topic = settings.topic(names.CALLERS)
    return settings.data_dir / "caller-directory" / role / topic


class CallerDirectory:
    """Leads by number, folded from caller.v1 records; safe to read from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = self._open()
        self._ready = threading.Event()

    def _open(self) -> rocksdict.Rdict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        # Small memtables, as the tables' (app/streaming/faust_app.py): RocksDB's default
        # of 64 MiB each would hold most of a worker's memory for a few MiB of records.
        options.set_write_buffer_size(2 * 1024 * 1024)
        options.set_max_write_buffer_number(2)
        shared = rocksdb_memory.shared()
        if shared is not None:
            shared.apply(options, 10)
        db = rocksdict.Rdict(str(self.path), options=options)
        # No write-ahead log, as the tables' (app/streaming/rocksdb_wal.py): the topic is
        # the log. A crash loses what no flush wrote, offsets included, so it is read again.
        db.set_write_options(rocksdb_wal.write_options())
        return db

    # -- reading -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether every record that was on the topic when reading began has been read."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for ``ready`` (from a worker thread)."""
        return self._ready.wait(timeout)

    def candidates(self, number: str) -> list[Candidate]:
        """Every lead carrying the E.164 ``number``, in any site."""
        raw = self._db.get(b"n|" + number.encode())
        if raw is None:
            return []
        found = []
        for lead_key in json_codec.loads(raw):
            record = self._db.get(b"l|" + lead_key.encode())
            candidate = Candidate.from_record(json_codec.loads(record)) if record else None
            if candidate is not None:
                found.append(candidate)
        return found

    def offsets(self) -> dict[int, int]:
        """The next offset to read of each partition read so far."""
        found = {}
        for key, value in self._db.items(from_key=b"o|"):
            if not (isinstance(key, bytes) and key.startswith(b"o|")):
                break
            found[int(key[2:])] = int(value)
        return found

    # -- writing (the reader thread only) -------------------------------------------------

    def apply(self, lead_key: str, value: bytes | None, partition: int, offset: int) -> None:
        """Fold one record (None: a tombstone) and remember the offset after it, at once."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        key = b"l|" + lead_key.encode()
        old = self._db.get(key)
        old_numbers = set(json_codec.loads(old).get("phones") or []) if old else set()
        record = _record(value)
        new_numbers = set(record["phones"]) if record is not None else set()
        for number in old_numbers - new_numbers:
            self._change(batch, number, lead_key, add=False)
        for number in new_numbers - old_numbers:
            self._change(batch, number, lead_key, add=True)
        if record is None:
            batch.delete(key)
        else:
            batch.put(key, json.dumps(record, separators=(",", ":")).encode())
        batch.put(f"o|{partition}".encode(), str(offset + 1).encode())
        self._db.write(batch)

    def _change(self, batch: rocksdict.WriteBatch, number: str, lead_key: str, add: bool) -> None:
        key = b"n|" + number.encode()
        raw = self._db.get(key)
        leads = [k for k in (json_codec.loads(raw) if raw else []) if k != lead_key]
        if add:
            leads.append(lead_key)
        if leads:
            batch.put(key, json.dumps(leads).encode())
        else:
            batch.delete(key)

    def mark_ready(self) -> None:
        self._ready.set()

    def clear(self) -> None:
        """Forget everything (the topic no longer matches this copy)."""
        self._db.close()
        rocksdict.Rdict.destroy(str(self.path))
        if self.path.exists():  # destroy leaves the folder behind
            shutil.rmtree(self.path, ignore_errors=True)
        self._db = self._open()

    def close(self) -> None:
        self._db.close()


def _record(value: bytes | None) -> dict[str, Any] | None:
    """The parts of a caller.v1 value the directory keeps (None: tombstone or unreadable)."""
    if not value:
        return None
    try:
        parsed = json_codec.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(parsed, dict) or Candidate.from_record(parsed) is None:
        return None
    phones = parsed.get("phones")
    return {
        "site_uuid": parsed["site_uuid"],
        "lead_id": parsed["lead_id"],
        "phones": [p for p in phones if isinstance(p, str)] if isinstance(phones, list) else [],
        "dynamic_variables": parsed.get("dynamic_variables") or {},
        "as_of": parsed.get("as_of"),
        "last_ai_call_at": parsed.get("last_ai_call_at"),
    }


# Broker answers that only mean "not ready yet" for a topic just created.
_NOT_READY = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


class DirectoryReader:
    """A thread that keeps a ``CallerDirectory`` in step with its topic."""

    def __init__(self, settings: Settings, directory: CallerDirectory, topic: str) -> None:
        self.settings = settings
        self.directory = directory
        self.topic = topic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.records = 0
        self._next: dict[int, int] = {}  # partition -> the next offset to read

    def start(self) -> None:
        """Start reading in a daemon thread (it ends with ``stop`` or the process)."""
        self._thread = threading.Thread(target=self._run, name="caller-directory", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # keep trying: the directory must not die
                if isinstance(exc, KafkaException) and exc.args[0].code() in _NOT_READY:
                    # A topic created moments ago: a busy broker may list its partitions
                    # as led before it serves them (seen 0.6 s after a fresh deployment's
                    # topics were created). Not a fault: read again shortly.
                    log.warning(
                        "caller directory: topic not served yet; reading again",
                        extra={"error": str(exc)},
                    )
                    self._stop.wait(1.0)
                    continue
                log.exception("caller directory reader failed; starting again")
                self._stop.wait(5.0)

    def _follow(self) -> None:
        consumer = Consumer(
            librdkafka_config(
                self.settings,
                **{
                    # Never joins a group or commits: every worker reads everything.
                    "group.id": f"{self.settings.app_id}-caller-directory",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                },
            )
        )
        try:
            ends: dict[int, int] | None = self._assign(consumer)
            started = time.monotonic()
            while not self._stop.is_set():
                if ends is not None and all(self._next.get(p, 0) >= e for p, e in ends.items()):
                    ends = None
                    self.directory.mark_ready()
                    log.info(
                        "caller directory ready",
                        extra={"records": self.records, "seconds": time.monotonic() - started},
                    )
                # Many at a time: one call (and one hold of the GIL) per batch, not per record.
                for msg in consumer.consume(_BATCH, _BATCH_WAIT_S):
                    self._take(msg, ends)
        finally:
            consumer.close()

    def _take(self, msg: Any, ends: dict[int, int] | None) -> None:
        error = msg.error()
        partition, offset = msg.partition() or 0, msg.offset() or 0
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                # At the end (compaction may have removed the last offsets).
                self._next[partition] = max(self._next.get(partition, 0), offset)
                if ends is not None and partition in ends:
                    ends[partition] = min(ends[partition], offset)
            else:
                log.warning("caller directory read error", extra={"error": str(error)})
            return
        key = (msg.key() or b"").decode("utf-8", "replace")
        self.directory.apply(key, msg.value(), partition, offset)
        self._next[partition] = offset + 1
        self.records += 1

    def _assign(self, consumer: Consumer) -> dict[int, int]:
        """Assign every partition where this copy left off (from the start when the copy
        does not match the topic); returns each partition's end when reading began."""
        meta = consumer.list_topics(self.topic, timeout=30).topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise RuntimeError(f"topic {self.topic} not found")
        marks = {
            p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=30)
            for p in meta.partitions
        }
        stored = self.directory.offsets()
        if any(
            p not in marks or not marks[p][0] <= offset <= marks[p][1]
            for p, offset in stored.items()
        ):
            log.warning("caller directory does not match its topic; rebuilding it")
            self.directory.clear()
            stored = {}
        consumer.assign(
            [TopicPartition(self.topic, p, stored.get(p, OFFSET_BEGINNING)) for p in marks]
        )
        self._next = dict(stored)
        # Empty partitions, and those already read to their end, count as read.
        ends = {p: high for p, (low, high) in marks.items() if high > max(low, stored.get(p, 0))}
        return ends
