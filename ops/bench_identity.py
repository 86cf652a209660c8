"""Per-event cost of identity resolution with 10k, 100k and 1M leads already indexed.

Outside Faust, but on the store Faust uses: each table is a rocksdict.Rdict in a temp
dir, values JSON-encoded as a Faust json table would. ``--stores worker`` (the default)
opens them as the worker opens its table partitions: the options of
app/streaming/faust_app.py, the shared cache of app/streaming/rocksdb_memory.py
(RGSYNC_ROCKSDB_CACHE_MB's default) and writes without the WAL (app/streaming/rocksdb_wal.py);
``faust`` with Faust's own RocksDB defaults (64 MiB write buffers, a 2 GiB block cache per
store, the WAL), as this benchmark did before. With both (``--stores worker,faust``) each
size is measured on each in turn, the same files, side by side; the ratios are the first's.
The index is built for each size; then a fixed batch of leads (half new people, half
re-registrations of people indexed at every size: new email, typo'd name, other phone
format) goes through the real `decide_lead`, one event at a time, after a warm-up.

    .venv/bin/python ops/bench_identity.py [--sizes 10000,100000,1000000 --batch 2000]
        [--stores worker]

Prints a line per size and a machine-readable line starting with "RESULT ".
Loading runs the real `index_lead` (no resolution: the people are distinct by
construction) in child processes, one per share of the people, over in-memory dicts;
their sorted output is joined and ingested into RocksDB as SST files. The measured
events run in this process on the RocksDB stores directly, and RSS is this process's
(Python, the code, RocksDB's caches).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rocksdict import (
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    SstFileWriter,
    WriteOptions,
)

from ops.synthetic_leads import PLACES, STREET_NAMES, name_lists
from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.domain.leads import decide_lead, index_lead
from realgeeks_sync.app.domain.matching import MatcherConfig
from realgeeks_sync.tables.identity import IdentityIndex, LeadSnapshot

__all__ = ["RdictStore", "SstWriter", "main"]

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
STREET_TYPES = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Pl", "Way", "Cir")
DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com")


STORES = ("worker", "faust")


def _worker_store(path: Path) -> Rdict:
    """A store opened as the worker opens a table partition (options, shared cache, no WAL)."""
    from faust.stores.rocksdb import RocksDBOptions

    from realgeeks_sync.app.core.settings import Settings
    from realgeeks_sync.app.streaming import rocksdb_memory, rocksdb_wal
    from realgeeks_sync.app.streaming.faust_app import table_options

    settings = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "bench"})
    if rocksdb_memory.shared() is None:  # one budget for the process, as in a worker
        rocksdb_memory.install(settings.rocksdb_cache_mb, settings.rocksdb_memtable_mb)
    db = Rdict(str(path), options=RocksDBOptions(**table_options(settings)).as_options())
    db.set_write_options(rocksdb_wal.write_options())
    return db


def _faust_options() -> Options:
    """RocksDB options as faust.stores.rocksdb.RocksDBOptions builds them for rocksdict."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_max_open_files(943719)
    options.set_write_buffer_size(67108864)
    options.set_target_file_size_base(67108864)
    options.set_max_write_buffer_number(3)
    table = BlockBasedOptions()
    table.set_bloom_filter(3, True)
    table.set_block_cache(Cache(2 * 1024**3))
    table.set_index_type(BlockBasedIndexType.binary_search())
    options.set_block_based_table_factory(table)
    return options


class RdictStore:
    """A KeyValueStore over rocksdict with JSON values (what a Faust json table stores).

    Counts its reads and the time they take (the lookup and the JSON decode), to show what
    the store itself costs an event.
    """

    def __init__(self, path: Path, store: str = "faust") -> None:
        if store == "worker":
            self.db = _worker_store(path)
        else:
            self.db = Rdict(str(path), options=_faust_options())
            self.db.set_write_options(WriteOptions())
        self.reads = 0
        self.read_s = 0.0

    def get(self, key: str, default: Any = None) -> Any:
        started = time.perf_counter()
        raw = self.db.get(key.encode())
        value = default if raw is None else json_codec.loads(raw)
        self.read_s += time.perf_counter() - started
        self.reads += 1
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.db[key.encode()] = json_codec.dumps(value)  # as the tables' codec does

    def __delitem__(self, key: str) -> None:
        del self.db[key.encode()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.db.get(key.encode()) is not None

    def close(self) -> None:
        self.db.close()


class SstWriter:
    """A write-only store that streams keys, in increasing order, into an SST file."""

    def __init__(self, path: Path) -> None:
        self.writer = SstFileWriter(options=_faust_options())
        self.writer.open(str(path))
        self.last = b""

    def get(self, key: str, default: Any = None) -> Any:
        return default  # index_lead never reads a snapshot back

    def __setitem__(self, key: str, value: Any) -> None:
        raw = key.encode()
        if raw <= self.last:
            raise ValueError("SST keys must be written in increasing order")
        self.writer[raw] = json.dumps(value, separators=(",", ":")).encode()
        self.last = raw

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("loading never deletes")

    def __contains__(self, key: object) -> bool:
        return False

    def finish(self) -> None:
        self.writer.finish()


def _person(i: int) -> dict[str, Any]:
    """Normalized fields of distinct person number i (deterministic, unique contacts)."""
    rng = random.Random(i)
    lists = name_lists()  # census names, as the synthetic benchmark draws them
    first = rng.choice(lists[rng.choice("mf")][0])
    last = rng.choice(lists["last"][0])
    city, _, state, areas, zips = rng.choice(PLACES)
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{last}"))
    local = "".join(ch for ch in local.lower() if ch.isalnum() or ch == ".")
    exchange = 200 + (i // 10_000) % 700  # unique number per i below 7M
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{local}{i}@{rng.choice(DOMAINS)}",
        "phone": f"+1{rng.choice(areas)}{exchange}{i % 10_000:04d}",
        "street_address": f"{rng.randint(1, 9999)} {rng.choice(STREET_NAMES)} "
        f"{rng.choice(STREET_TYPES)}",
        "city": city,
        "state": state,
        "zip": rng.choice(zips),
        "source": "Website Property Search",
        "role": "Buyer",
    }


def _lead_id(i: int) -> str:
    return f"{i:032x}"


def _build_part(path: Path, part: int, start: int, stop: int) -> None:
    """Index people start..stop-1 with the real `index_lead` (one loader process).

    Lookup keys go to an in-memory dict (the loader's reads are dict reads), written
    out sorted as "key<TAB>json" lines; snapshots stream into an SST file.
    """
    config = MatcherConfig()
    index_store: dict[str, Any] = {}
    leads = SstWriter(path / f"leads-{part}.sst")
    index = IdentityIndex(index_store, leads)
    for i in range(start, stop):
        fields = _person(i)
        lead_id = _lead_id(i)  # increasing with i, so snapshot keys arrive sorted
        snapshot = LeadSnapshot(
            lead_id=lead_id,
            source_lead_ids=(lead_id,),
            emails=(fields["email"],),
            phones=(fields["phone"],),
            fields=fields,
            created_at="2024-01-01T00:00:00Z",
            updated_at="2024-01-01T00:00:00Z",
        )
        index_lead(index, SITE, snapshot, config)
    leads.finish()
    with open(path / f"index-{part}.tsv", "w", encoding="utf-8") as out:
        for key in sorted(index_store):
            out.write(f"{key}\t{json.dumps(index_store[key], separators=(',', ':'))}\n")


def _read_tsv(path: Path) -> Iterator[tuple[str, str]]:
    """(key, raw JSON) pairs of a sorted part file."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            key, _, raw = line.rstrip("\n").partition("\t")
            yield key, raw


def _merge_parts(path: Path, parts: int) -> None:
    """Join the loaders' parts into the index and lead stores.

    Parts hold consecutive people, so a list shared by several parts is their lists
    in part order, cut to its cap: what one loader appending them all would store.
    """
    config = MatcherConfig()
    merged = SstFileWriter(options=_faust_options())
    merged.open(str(path / "index.sst"))
    streams = [_read_tsv(path / f"index-{part}.tsv") for part in range(parts)]
    for key, group in itertools.groupby(heapq.merge(*streams), key=lambda pair: pair[0]):
        raws = [raw for _, raw in group]
        if len(raws) == 1:
            merged[key.encode()] = raws[0].encode()
            continue
        kind = key.split("|", 2)[1]
        cap = config.candidate_cap if kind == "block" else config.shared_cap
        items = [lead for raw in raws for lead in json.loads(raw)]
        merged[key.encode()] = json.dumps(items[-cap:], separators=(",", ":")).encode()
    merged.finish()
    for name, files in (
        ("index", ["index.sst"]),
        ("leads", [f"leads-{p}.sst" for p in range(parts)]),
    ):
        store = RdictStore(path / name)
        store.db.ingest_external_file([str(path / f) for f in files])
        store.close()
    for leftover in [*path.glob("*.sst"), *path.glob("*.tsv")]:
        leftover.unlink()


def _build(path: Path, size: int, jobs: int) -> None:
    """Load `size` distinct people into fresh stores under path, using `jobs` processes.

    Processes are spawned, not forked: a fork would inherit RocksDB's global state
    without its background threads.

    Raises:
        RuntimeError: a loader failed.
    """
    path.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    bounds = [size * part // jobs for part in range(jobs + 1)]
    loaders = [
        context.Process(target=_build_part, args=(path, part, bounds[part], bounds[part + 1]))
        for part in range(jobs)
    ]
    for loader in loaders:
        loader.start()
    for loader in loaders:
        loader.join()
    merger = context.Process(target=_merge_parts, args=(path, jobs))
    merger.start()
    merger.join()
    failed = [p.exitcode for p in (*loaders, merger) if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"loading {size} leads failed with exit codes {failed}")


def _batch(tag: int, batch: int) -> Iterator[dict[str, Any]]:
    """Raw created bodies: half new people, half re-registrations of people < 10k.

    `tag` keeps batches apart: each brings its own new people, ids and phones.
    """
    rng = random.Random(tag)
    for n in range(batch):
        if n % 2 == 0:
            fields = _person(60_000_000 + tag * 100_000 + n)  # nobody indexed yet
            phone = fields["phone"]
            body = dict(fields, phone=f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}")
        else:
            fields = _person(rng.randrange(10_000))  # indexed at every size
            phone = fields["phone"]
            body = dict(fields)
            change = n % 6
            if change == 1:  # new email, same phone
                body["email"] = f"new{tag}.{n}@example.org"
            elif change == 3:  # typo in the first name, same email, phone typed differently
                body["first_name"] = fields["first_name"][:-1]
                body["phone"] = f"{phone[2:5]}.{phone[5:8]}.{phone[8:]}"
            else:  # new email and phone, same name and street: name+address or fuzzy
                body["email"] = f"moved{tag}.{n}@example.org"
                body["phone"] = f"+1 808 {950 + tag % 40} {n:04d}"
        body["id"] = f"b{tag:07x}{n:024x}"  # never a preloaded id
        yield body


def _rss_mib() -> float:
    """Resident set size of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(index: IdentityIndex, tag: int, batch: int, config: MatcherConfig) -> dict[str, Any]:
    """Resolve and index a batch one event at a time; microseconds per event, and the reads
    of the index's stores among them."""
    timings: list[float] = []
    rules: dict[str, int] = {}
    bodies = list(_batch(tag, batch))  # made before the clock starts: not resolution's cost
    stores = [s for s in (index.index_store, index.lead_store) if isinstance(s, RdictStore)]
    for store in stores:
        store.reads, store.read_s = 0, 0.0
    cpu_started = time.process_time()
    for n, body in enumerate(bodies):
        started = time.perf_counter()
        decision = decide_lead(
            index,
            site_uuid=SITE,
            action="created",
            body=body,
            source_timestamp=None,
            message_id=f"bench-{tag}-{n}",
            now="2024-06-01T00:00:00Z",
            config=config,
        )
        timings.append((time.perf_counter() - started) * 1e6)
        rule = decision.match.rule if decision.match else "new"
        rules[rule] = rules.get(rule, 0) + 1
    cpu_us = (time.process_time() - cpu_started) * 1e6 / max(batch, 1)
    timings.sort()
    return {
        "us_per_event": round(statistics.fmean(timings), 1),
        # CPU time: steadier than wall time on a machine shared with other work.
        "cpu_us_per_event": round(cpu_us, 1),
        "events_per_s_cpu": round(1e6 / cpu_us) if cpu_us else None,
        "p50_us": round(timings[len(timings) // 2], 1),
        "p99_us": round(timings[int(len(timings) * 0.99)], 1),
        "rules": rules,
        "store_reads_per_event": round(sum(s.reads for s in stores) / max(batch, 1), 1),
        # Wall time of the reads (a lookup and a JSON decode each), inside us_per_event.
        "store_read_us_per_event": round(sum(s.read_s for s in stores) * 1e6 / max(batch, 1), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one line per size and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--dir", default=None, help="where to put the RocksDB files")
    parser.add_argument("--jobs", type=int, default=2, help="loader processes")
    parser.add_argument(
        "--stores",
        default="worker",
        help=f"how the stores are opened, comma-separated, each measured in turn: {STORES}",
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in args.sizes.split(","))
    stores = [x.strip() for x in args.stores.split(",") if x.strip()]
    if not stores or set(stores) - set(STORES):
        raise SystemExit(f"bench_identity: --stores must name some of {STORES}")
    config = MatcherConfig()

    root = Path(tempfile.mkdtemp(prefix="bench_identity_", dir=args.dir))
    results: list[dict[str, Any]] = []
    versus: list[dict[str, Any]] = []
    disk_mib = 0.0
    tag = 0
    try:
        for size in sizes:
            path = root / str(size)
            started = time.perf_counter()
            _build(path, size, args.jobs)
            load_s = time.perf_counter() - started
            for store in stores:
                tag += 2  # each measurement brings new people of its own
                index_db = RdictStore(path / "index", store)
                lead_db = RdictStore(path / "leads", store)
                try:
                    index = IdentityIndex(index_db, lead_db)
                    _measure(index, tag + 1, 200, config)  # warm caches, metadata
                    result: dict[str, Any] = {"leads": size, "size": size, "store": store}
                    result.update(_measure(index, tag, args.batch, config))
                    result["rss_mib"] = round(_rss_mib(), 1)
                finally:
                    index_db.close()
                    lead_db.close()
                result["preload_s"] = round(load_s, 1)
                (results if store == stores[0] else versus).append(result)
                print(
                    f"{size:>9} leads, {store + ' store:':<14}{result['us_per_event']:8.1f} "
                    f"us/event (CPU {result['cpu_us_per_event']} us, "
                    f"{result['events_per_s_cpu']}/s; p50 {result['p50_us']}, p99 "
                    f"{result['p99_us']}; store reads {result['store_reads_per_event']} taking "
                    f"{result['store_read_us_per_event']} us), RSS {result['rss_mib']} MiB, "
                    f"preload {load_s:.0f} s, "
                    f"rules {result['rules']}",
                    flush=True,
                )
            disk_mib = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
            shutil.rmtree(path, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = results[-1]["us_per_event"] / results[0]["us_per_event"] if results else None
    ratio_p50 = results[-1]["p50_us"] / results[0]["p50_us"] if results else None
    ratio_cpu = (
        results[-1]["cpu_us_per_event"] / results[0]["cpu_us_per_event"] if results else None
    )
    summary = {
        "store": f"rocksdict.Rdict ({stores[0]} options), JSON values",
        "batch": args.batch,
        "sizes": results,
        "versus": versus,
        "ratio_largest_to_smallest": round(ratio, 2) if ratio else None,
        "ratio_p50_largest_to_smallest": round(ratio_p50, 2) if ratio_p50 else None,
        "ratio_cpu_largest_to_smallest": round(ratio_cpu, 2) if ratio_cpu else None,
        "rss_mib_at_largest": results[-1]["rss_mib"] if results else None,
        "disk_mib_at_largest": round(disk_mib, 1),
    }
    print(
        f"ratio {sizes[-1]}/{sizes[0]}: {summary['ratio_largest_to_smallest']}x mean, "
        f"{summary['ratio_p50_largest_to_smallest']}x p50; "
        f"RSS at {sizes[-1]}: {summary['rss_mib_at_largest']} MiB; disk {disk_mib:.0f} MiB"
    )
    print("RESULT " + json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
