"""The dialer's decision cost: state-machine transitions per second, without a broker.

    .venv/bin/python ops/bench_dialer.py [--leads 20000] [--sites 50]

Runs app/domain/dialing's ``DialerCore`` over dict tables with no-op effects, so the figure is the
decision itself plus reading and writing its JSON records (what the agent adds on top is
Kafka). Each lead goes through a realistic life on a site with two lines: its context
(admitted and dispatched: the calling window is computed from the number), the placed
answer, the outcome (no answer: a redial is planned), one lead in ten opts out, and a tick
per site at the end (every site holds waiting redials by then). Reported per kind of event:
microseconds per transition, and transitions per second over the whole mix.
The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realgeeks_sync.app.domain.dialing import (  # noqa: E402
    CallAnswer,
    CallEnded,
    CallRequest,
    ContextSeen,
    DialerPolicy,
    OptOut,
    Tick,
)
from realgeeks_sync.app.domain.dialing.store import DialerCore, DialerStore  # noqa: E402

# Noon in Honolulu: every number below is inside its calling hours.
NOW = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)
PHONE_STEM = "+1808"


def _context(site: str, lead: str, phone: str) -> dict[str, Any]:
    return {
        "schema": "call_context.v1",
        "event_id": f"ctx-{lead}",
        "site_uuid": site,
        "lead_id": lead,
        "as_of": NOW.isoformat(),
        "lead": {"phone": phone, "phone2": None, "created": NOW.isoformat()},
        "eligible": True,
        "reason": None,
        "trigger": "created",
        "dynamic_variables": {f"var{n}": "x" * 20 for n in range(30)},
    }


async def run(leads: int, sites: int) -> dict[str, Any]:
    tables: tuple[dict[str, Any], ...] = ({}, {}, {})
    calls: list[CallRequest] = []

    async def send(*_: Any) -> None:
        return None

    async def persist(writes: list[Any], durable: bool) -> None:
        for table, key, value in writes:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = json.loads(json.dumps(value))  # as a table value would

    policy = DialerPolicy()  # two lines per site, as deployed
    clock = {"now": NOW}
    core = DialerCore(
        DialerStore(*tables),
        policy,
        lambda: clock["now"],
        send=send,
        persist=persist,
        place=calls.append,
    )
    spent: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)

    async def timed(kind: str, event: Any) -> None:
        started = time.perf_counter()
        await core.apply(event)
        spent[kind] += time.perf_counter() - started
        count[kind] += 1

    for n in range(leads):
        site, lead = f"site-{n % sites}", f"lead-{n}"
        # One number per lead: a lead's opt-out also stops its number on its site, so a
        # number reused by a later lead of that site would (rightly) not be dialed.
        phone = f"{PHONE_STEM}{817 + n // 10_000}{n % 10_000:04d}"
        before = len(calls)
        await timed(
            "context (admit, dispatch)", ContextSeen(site, lead, _context(site, lead, phone))
        )
        if len(calls) == before:
            raise RuntimeError("a lead in its window was not dialed")
        call = calls[-1]
        placed = CallAnswer(
            site, lead, call.attempt_id, "placed", conversation_id="c" + call.attempt_id
        )
        await timed("answer (placed)", placed)
        ended = CallEnded(site, lead, "c" + call.attempt_id, "no-answer", call.attempt_id)
        await timed("outcome (no answer: redial)", ended)
        if n % 10 == 0:
            stop = OptOut(
                f"o{n}", site, "lead", lead, None, "opt_out", "realgeeks", NOW.isoformat()
            )
            await timed("opt-out (lead and number)", stop)
    for n in range(sites):
        await timed("tick", Tick(f"site-{n}"))
    total_s = sum(spent.values())
    total_n = sum(count.values())
    return {
        "bench": "dialer",
        "leads": leads,
        "sites": sites,
        "calls": len(calls),
        "us_per_transition": {k: round(spent[k] / count[k] * 1e6, 1) for k in spent},
        "transitions": total_n,
        "transitions_per_s": round(total_n / total_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--sites", type=int, default=50)
    args = parser.parse_args(argv)
    r = asyncio.run(run(args.leads, args.sites))
    for kind, us in r["us_per_transition"].items():
        print(f"  {kind:28s} {us:8.1f} us")
    print(f"  {r['transitions']} transitions, {r['transitions_per_s']}/s over the mix")
    print("RESULT " + json.dumps(r, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
