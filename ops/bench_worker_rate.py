"""Worker throughput: the highest offered rate one worker keeps with p99 under a bound.

    .venv/bin/python ops/bench_worker_rate.py [--rates 100,150,200,...] [--duration 60]
        [--p99-ms 500] [--partitions 8] [--sites 50] [--versus RGSYNC_NAME=VALUE ...]

Runs ops/bench_e2e_latency.py's measurement (signed ``created`` webhooks on an open-loop
timetable to a ``realgeeks-sync ingress`` process, one fresh worker, a consumer timing
each lead event on ``leads.normalized``) at each rate in turn, and stops at the first rate
whose p99 from the 200 to the lead event is over ``--p99-ms`` or that loses anything.
Reported per rate: p50/p99, the worker's CPU milliseconds per webhook (all its threads,
/proc), its garbage collector's pauses and the share of the machine other processes took.
``--versus`` (repeatable: all of them together) runs each rate a second time with the
worker under other settings, side by side. The last line is ``RESULT {json}`` with the
highest rate that kept the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ops.bench_e2e_latency import BROKER, describe_gc, run  # noqa: E402
from ops.bench_e2e_latency import parser as e2e_parser  # noqa: E402

__all__ = ["main"]


def _step(args: argparse.Namespace, rate: float, settings: tuple[str, ...] = ()) -> dict[str, Any]:
    # The e2e benchmark's defaults but for these: one ingress process, quieter logs, and a
    # shorter wait for stragglers (a rate the worker cannot keep is over the bound anyway).
    e2e = e2e_parser().parse_args(
        ["--rate", str(rate), "--duration", str(args.duration), "--partitions",
         str(args.partitions), "--sites", str(args.sites), "--ingress-process",
         "--drain-timeout", "120", "--log-level", "WARNING", "--broker", args.broker,
         *(arg for setting in settings for arg in ("--worker-setting", setting))]
    )  # fmt: skip
    r = asyncio.run(run(e2e))
    lat = r["event_after_200_ms"]
    return {
        "rate": rate,
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
        "missing": r["missing"],
        "errors": r["errors"],
        "achieved_rate": r["achieved_rate"],
        "settings": list(settings),
        "cpu_ms_per_webhook": r["worker_cpu_ms_per_webhook"],
        "worker_cpu_pct": r["worker_cpu_pct"],
        "others_pct": r["machine_cpu"]["others_pct"],
        "gc": r.get("worker_gc"),
        "ok": bool(
            lat["p99"] is not None
            and lat["p99"] < args.p99_ms
            and r["missing"] == 0
            and not r["errors"]
        ),
    }


def _describe(step: dict[str, Any]) -> str:
    """One step's figures, as printed."""
    return (
        f"p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, missing {step['missing']}, "
        f"{step['cpu_ms_per_webhook']} ms CPU per webhook (worker {step['worker_cpu_pct']} %, "
        f"others {step['others_pct']} %){_gc(step['gc'])} "
        f"{'ok' if step['ok'] else 'over the bound'}"
    )


def _gc(gc: dict[str, Any] | None) -> str:
    return "" if gc is None else f", GC {describe_gc(gc)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,200,300,350,400,450,500,600,800,1000")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--p99-ms", type=float, default=500.0)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--broker", default=BROKER)
    parser.add_argument(
        "--versus",
        metavar="RGSYNC_NAME=VALUE",
        action="append",
        help="also run each rate with the worker under this setting (repeatable: all of them "
        "together), side by side (reported, not part of the result)",
    )
    args = parser.parse_args(argv)
    steps: list[dict[str, Any]] = []
    versus: list[dict[str, Any]] = []
    for n, rate in enumerate(float(x) for x in args.rates.split(",")):
        if args.versus:
            alternative = tuple(args.versus)
            # Alternate which goes first, so neither always runs on a warmer machine.
            runs = [(), alternative] if n % 2 == 0 else [alternative, ()]
            by = {s: _step(args, rate, s) for s in runs}
            step, other = by[()], by[alternative]
            versus.append(other)
            print(f"{rate:g}/s with {' '.join(alternative)}: {_describe(other)}", flush=True)
        else:
            step = _step(args, rate)
        steps.append(step)
        print(f"{rate:g}/s for {args.duration:g} s: {_describe(step)}", flush=True)
        # With --versus, go on while either keeps the bound (to fill the comparison).
        if not step["ok"] and not (versus and versus[-1]["ok"]):
            break
    # The highest rate kept below the first one over the bound (not one above it).
    first_over = next((s for s in steps if not s["ok"]), None)
    kept = [s for s in steps if s["ok"] and (first_over is None or s["rate"] < first_over["rate"])]
    best = kept[-1] if kept else None
    result = {
        "bench": "worker_rate",
        "duration_s": args.duration,
        "p99_bound_ms": args.p99_ms,
        "max_rate": best["rate"] if best else None,
        "cpu_ms_per_webhook_at_max": best["cpu_ms_per_webhook"] if best else None,
        "p99_ms_at_max": best["p99_ms"] if best else None,
        "first_over": first_over,
        "steps": steps,
        "versus": versus,
    }
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
