"""The ingress handler's own CPU per request, without HTTP or Kafka: its share of the ingest cost.

    .venv/bin/python ops/bench_ingress_handler.py [--requests 20000 --rounds 3 --profile]

Signed Real Geeks webhooks (ops/loadgen.py's, as wrk sends) go through
``Ingress.realgeeks`` on aiohttp's mocked requests, on uvloop, with a publisher that
answers at once: verification, rate limit, body hold, envelope, metrics and the answer,
but neither aiohttp's parsing and writing nor librdkafka's produce. ``ops/bench_ingest.py``
measures the whole path; this one tells a change to the handler from machine noise (run
it from two trees one after the other). Prints a line per round and ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "ops")]

import uvloop  # noqa: E402
from aiohttp import streams  # noqa: E402
from aiohttp.test_utils import make_mocked_request  # noqa: E402
from aiohttp.web import Request  # noqa: E402
from loadgen import WebhookFactory  # noqa: E402

from realgeeks_sync.app.core.metrics import Metrics  # noqa: E402
from realgeeks_sync.app.core.settings import Settings  # noqa: E402
from realgeeks_sync.app.ingress.handlers import Ingress  # noqa: E402

__all__ = ["main"]

SECRET = "bench-handler-secret"


class _Transport:
    """What a StreamReader asks of its protocol: nothing to pause or resume here."""

    _reading_paused = False

    def pause_reading(self, **_: Any) -> None:
        return None

    def resume_reading(self, **_: Any) -> None:
        return None


class _Published:
    """A publisher whose broker acknowledges at once."""

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        return None


def _requests(count: int, loop: asyncio.AbstractEventLoop) -> list[Request]:
    body, headers = WebhookFactory(SECRET, seed="wrk").next()
    headers = {**headers, "Content-Length": str(len(body))}
    made = []
    for _ in range(count):
        payload = streams.StreamReader(_Transport(), 2**16, loop=loop)  # type: ignore[arg-type]
        payload.feed_data(body)
        payload.feed_eof()
        made.append(make_mocked_request("POST", "/webhooks/realgeeks", headers, payload=payload))
    return made


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": SECRET,
            "RGSYNC_CLIENT_RATE_PER_S": "1e9",
            "RGSYNC_CLIENT_BURST": str(10**9),
        }
    )
    ingress = Ingress(settings, _Published(), Metrics())
    loop = asyncio.get_running_loop()
    first = await ingress.realgeeks(_requests(1, loop)[0])
    if first.status != 200:
        raise SystemExit(f"bench_ingress_handler: the handler answered {first.status}")
    rounds: list[float] = []
    for n in range(args.rounds):
        batch = _requests(args.requests, loop)
        started = time.process_time()
        for request in batch:
            await ingress.realgeeks(request)
        us = (time.process_time() - started) * 1e6 / args.requests
        rounds.append(round(us, 2))
        print(f"round {n + 1}: {us:.2f} us of CPU per request", flush=True)
    if args.profile:
        profile = cProfile.Profile()
        batch = _requests(args.requests, loop)
        profile.enable()
        for request in batch:
            await ingress.realgeeks(request)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return {
        "bench": "ingress_handler",
        "root": str(ROOT),
        "requests": args.requests,
        "us_per_request_rounds": rounds,
        "us_per_request_median": round(statistics.median(rounds), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="and a cProfile of one more")
    args = parser.parse_args(argv)
    result = uvloop.run(_run(args))
    print("RESULT " + json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
