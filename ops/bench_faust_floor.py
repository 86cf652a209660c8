"""Faust's own cost per record: agents that only pass records on, on the worker's faust.App.

    .venv/bin/python ops/bench_faust_floor.py [--records 30000] [--hops 1,4] [--rounds 2]

A floor for the worker's CPU per webhook (issue 13): what faust-streaming and aiokafka
cost with no domain work at all. Each run is a fresh process with a faust.App made by the
worker's ``create_app`` (at-least-once, acks=all, the same producer settings; not the
patches the worker's ``build`` installs, such as its fetch bounds) and its own
topics: ``--records`` records (500 bytes, 64 keys, 8 partitions) are written to the first
topic first; then a chain of agents, each reading one topic and sending every record on
to the next with ``await topic.send`` (the last only counts). Reported: the process's CPU
(all threads) from the first record read to the last record counted, per record; with
hops 1 and more in the same run, the cost of one record read (hops=1) and of each further
hop (read and sent on). The worker reads two records per webhook in its agents and writes
about 18 (three events and 15 changelog records), its changelog records in bulk rather
than through ``topic.send`` (app/streaming/bulk_send.py). The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BROKER = "127.0.0.1:9092"
VALUE = b'{"x":"' + b"a" * 490 + b'"}'

__all__ = ["main"]


async def _prefill(broker: str, names: list[str], records: int, partitions: int) -> None:
    """Create the chain's topics and write the records to the first."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=broker, acks="all", linger_ms=5, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        sent = [
            await producer.send(names[0], value=VALUE, key=b"k%d" % (i % 64))
            for i in range(records)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _delete(broker: str, token: str) -> None:
    """Delete a run's topics: the chain and Faust's own (its assignor's, named by app id).

    The run's consumer group is left to the broker's offset retention.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(token)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


def _child(args: argparse.Namespace) -> None:
    """One run: prefill, then a worker whose agents pass the records along; prints RESULT."""
    from realgeeks_sync.app.core.settings import Settings
    from realgeeks_sync.app.streaming.faust_app import create_app

    token = args.token
    names = [f"{token}.hop{i}" for i in range(args.child)]
    asyncio.run(_prefill(args.broker, names, args.records, args.partitions))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": "floor",
            "RGSYNC_KAFKA_URL": f"kafka://{args.broker}",
            "RGSYNC_APP_ID": token,
            "RGSYNC_TOPIC_PREFIX": f"{token}.",
            "RGSYNC_DATA_DIR": args.data_dir,
            "RGSYNC_WEB_HOST": "127.0.0.1",
            "RGSYNC_WEB_PORT": str(port),
            "RGSYNC_PARTITIONS": str(args.partitions),
        }
    )
    app = create_app(settings)
    topics = [
        app.topic(n, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        for n in names
    ]
    hops = args.child
    state: dict[str, Any] = {"counted": 0, "cpu0": None, "t0": None}

    def first_read() -> None:
        if state["cpu0"] is None:
            state["cpu0"], state["t0"] = time.process_time(), time.perf_counter()

    def counted() -> None:
        state["counted"] += 1
        if state["counted"] == args.records:
            cpu = time.process_time() - state["cpu0"]
            wall = time.perf_counter() - state["t0"]
            result = {
                "hops": hops,
                "records": args.records,
                "cpu_us_per_record": round(cpu / args.records * 1e6, 1),
                "records_per_s": round(args.records / wall),
            }
            print("RESULT " + json.dumps(result), flush=True)
            os._exit(0)  # the measurement is over; no graceful stop to wait for

    def agent(i: int) -> None:
        source, target = topics[i], topics[i + 1] if i + 1 < hops else None

        async def hop(stream: Any) -> None:
            async for event in stream.events():
                if i == 0:
                    first_read()
                if target is None:
                    counted()
                else:
                    await target.send(key=event.key, value=event.value)

        app.agent(source, name=f"{token}.hop{i}")(hop)

    for i in range(hops):
        agent(i)
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


def _run(args: argparse.Namespace, hops: int) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="bench_faust_floor_")
    token = f"floor{uuid.uuid4().hex[:10]}"  # the run's topics and app id start with it
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", str(hops), "--records",
        str(args.records), "--partitions", str(args.partitions), "--broker", args.broker,
        "--data-dir", data_dir, "--token", token,
    ]  # fmt: skip
    try:
        out = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"floor run with {hops} hops not done in {args.timeout:g} s") from exc
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        asyncio.run(_delete(args.broker, token))  # whatever happened to the run
    for line in out.stdout.splitlines() + out.stderr.splitlines():
        if "RESULT " in line:
            return dict(json.loads(line.split("RESULT ", 1)[1]))
    raise RuntimeError(f"floor run with {hops} hops gave no result:\n{out.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    """Run each hop count per round (alternating), print a line each and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30000)
    parser.add_argument("--hops", default="1,4", help="chain lengths, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--broker", default=BROKER)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    chain = [int(x) for x in args.hops.split(",") if x.strip()]
    runs: dict[int, list[dict[str, Any]]] = {h: [] for h in chain}
    for rnd in range(args.rounds):
        for hops in chain if rnd % 2 == 0 else reversed(chain):
            r = _run(args, hops)
            runs[hops].append(r)
            print(
                f"round {rnd + 1}, {hops} hop(s): {r['cpu_us_per_record']} us of CPU per record "
                f"through the chain, {r['records_per_s']} records/s",
                flush=True,
            )
    summary: dict[str, Any] = {
        "records": args.records,
        "by_hops": {
            str(h): {
                "cpu_us_per_record_rounds": [r["cpu_us_per_record"] for r in rs],
                "cpu_us_per_record_median": statistics.median(r["cpu_us_per_record"] for r in rs),
            }
            for h, rs in runs.items()
        },
    }
    if 1 in runs and len(chain) > 1:
        longest = max(chain)
        read = summary["by_hops"]["1"]["cpu_us_per_record_median"]
        whole = summary["by_hops"][str(longest)]["cpu_us_per_record_median"]
        summary["read_us"] = read
        summary["read_and_send_us_per_further_hop"] = round((whole - read) / (longest - 1), 1)
        print(
            f"a record read: {read} us; each further hop (read and sent on): "
            f"{summary['read_and_send_us_per_further_hop']} us"
        )
    print("RESULT " + json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
