"""A gentle stream of realistic Real Geeks webhooks for ``ops/demo``.

Every few seconds, for the demo's sites in turn: a new lead (a name, an email, a phone
number inside calling hours now), now and then the same person again under a new Real
Geeks id (the service merges them), an update, or a property view. Each webhook is signed
with its site's own secret. Stops after ``--count`` webhooks (0: never) or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from ops.testkit.dialer import callable_number
from realgeeks_sync.app.ingress.signatures import sign_realgeeks

FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Diego",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Ivy",
    "Jonah",
    "Keala",
    "Liam",
    "Maya",
    "Noah",
    "Olivia",
    "Priya",
]
LAST = [
    "Kahale",
    "Nguyen",
    "Garcia",
    "Smith",
    "Okafor",
    "Tanaka",
    "Rossi",
    "Brown",
    "Silva",
    "Cohen",
    "Patel",
    "Larsen",
]
SOURCES = ["Website Property Search", "Zillow", "Open House", "Facebook Ad"]
ROLES = ["Buyer", "Buyer", "Seller", "Buyer and Seller", "Renter"]
STREETS = ["Kalakaua Ave", "Lamar Blvd", "Congress Ave", "Ala Moana Blvd", "Barton Springs Rd"]


def _number(rng: random.Random) -> str:
    """A number in a zone inside calling hours now, its last four digits varied."""
    base = callable_number(datetime.now(UTC), allowed=True)
    return base[:-4] + f"{rng.randrange(2000, 9999):04d}"


def _lead(rng: random.Random, site: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    now = datetime.now(UTC).isoformat()
    return {
        "id": uuid.uuid4().hex,
        "site_uuid": site,
        "created": now,
        "source": rng.choice(SOURCES),
        "role": rng.choice(ROLES),
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}{rng.randrange(10, 99)}@example.com".lower(),
        "phone": _number(rng),
        "street_address": f"{rng.randrange(100, 2999)} {rng.choice(STREETS)}",
        "activities": [
            {
                "type": "visited",
                "source": "Website",
                "description": "First visit (initial sign-up)",
                "created": now,
            }
        ],
    }


def _send(url: str, secret: str, body: dict[str, Any], action: str) -> int:
    raw = json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=raw,
        headers={
            "Content-Type": "application/json",
            "X-Lead-Router-Action": action,
            "X-Lead-Router-Message-Id": uuid.uuid4().hex,
            "X-Lead-Router-Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "X-Lead-Router-Signature": sign_realgeeks(secret, raw),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def main(argv: list[str] | None = None) -> None:
    """Send webhooks until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the worker's /webhooks/realgeeks")
    parser.add_argument(
        "--site", action="append", required=True, help="SITE_UUID=SECRET (repeat per site)"
    )
    parser.add_argument("--every", type=float, default=4.0, help="seconds between webhooks")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    sites = [tuple(s.split("=", 1)) for s in args.site]
    rng = random.Random(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    known: list[dict[str, Any]] = []
    sent = 0
    try:
        while not args.count or sent < args.count:
            site, secret = sites[sent % len(sites)]
            mine = [lead for lead in known if lead["site_uuid"] == site]
            roll = rng.random()
            if mine and roll < 0.15:
                # The same person again under a new Real Geeks id: merged by email.
                again = dict(rng.choice(mine), id=uuid.uuid4().hex, activities=[])
                action, body = "created", again
            elif mine and roll < 0.3:
                lead = rng.choice(mine)
                action = "activity_added"
                body = {
                    "id": lead["id"],
                    "site_uuid": site,
                    "activities": [
                        {
                            "type": "property_viewed",
                            "source": "Website",
                            "description": f"Viewed {rng.randrange(100, 999)} Makaha Valley Rd",
                            "created": datetime.now(UTC).isoformat(),
                            "property": {"city": "Honolulu", "list_price": "1250000"},
                        }
                    ],
                }
            else:
                body = _lead(rng, site)
                known.append(body)
                action = "created"
            status = _send(args.url, secret, body, action)
            print(f"demo: {action} for site {site[:8]}: HTTP {status}", flush=True)
            sent += 1
            time.sleep(args.every * (0.5 + rng.random()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
