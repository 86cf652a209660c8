"""``realgeeks-sync backfill FILE``: import a Real Geeks export through the same pipeline.

Each row becomes a ``created`` webhook envelope on realgeeks.webhooks.raw (source
``backfill``, so the dialer never calls imported leads). The message id is derived from
the row's site and lead id (else its content), so a second run is all duplicates and
creates nothing new.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import Producer

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.normalize import normalize_site_uuid
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.kafka_config import producer_config

__all__ = ["BackfillError", "read_rows", "row_to_body", "run_backfill"]

# Real Geeks export headers (and common variants) -> webhook body fields.
_COLUMNS = {
    "id": "id",
    "lead_id": "id",
    "lead": "id",
    "site_uuid": "site_uuid",
    "site": "site_uuid",
    "first_name": "first_name",
    "firstname": "first_name",
    "first": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "last": "last_name",
    "email": "email",
    "email_address": "email",
    "second_email": "second_email",
    "phone": "phone",
    "phone_number": "phone",
    "primary_phone": "phone",
    "cell_phone": "phone",
    "phone2": "phone2",
    "second_phone": "phone2",
    "secondary_phone": "phone2",
    "address": "street_address",
    "street_address": "street_address",
    "street": "street_address",
    "city": "city",
    "state": "state",
    "zip": "zip",
    "zip_code": "zip",
    "postal_code": "zip",
    "source": "source",
    "lead_source": "source",
    "source_details": "source_details",
    "role": "role",
    "lead_type": "role",
    "type": "role",
    "created": "created",
    "date_created": "created",
    "registered": "created",
    "created_at": "created",
    "sign_up_date": "created",
    "agent": "agent_name",
    "agent_name": "agent_name",
    "assigned_agent": "agent_name",
    "agent_email": "agent_email",
}


class BackfillError(ValueError):
    """The input file cannot be read as a Real Geeks export."""


def _column(name: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    return _COLUMNS.get(key, key)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) from a CSV with a header or a JSON-lines file.

    Raises:
        BackfillError: the file is neither.
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        first = fh.read(1)
        fh.seek(0)
        if first in ("{", "["):
            yield from _json_lines(fh)
        else:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise BackfillError("CSV without a header row")
            for n, row in enumerate(reader, start=2):
                yield (
                    n,
                    {
                        _column(k): v
                        for k, v in row.items()
                        if k is not None and v not in (None, "")
                    },
                )


def _json_lines(fh: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            yield n, {"__error__": "not JSON"}
            continue
        yield (
            n,
            (
                {_column(k): v for k, v in row.items()}
                if isinstance(row, dict)
                else {"__error__": "not a JSON object"}
            ),
        )


def row_to_body(row: dict[str, Any], default_site: str | None) -> dict[str, Any]:
    """A ``created`` webhook body for one export row.

    Raises:
        BackfillError: no site, or nothing that identifies a person.
    """
    if "__error__" in row:
        raise BackfillError(row["__error__"])
    body = {k: v for k, v in row.items() if not k.startswith("__")}
    body.setdefault("site_uuid", default_site)
    if not body.get("site_uuid"):
        raise BackfillError("no site_uuid column and no --site-uuid")
    if not any(body.get(k) for k in ("id", "email", "phone", "first_name", "last_name")):
        raise BackfillError("no id, email, phone or name")
    body.setdefault("source", "Backfill")
    body["action"] = "created"
    return body


def _message_id(body: dict[str, Any]) -> str:
    identity = f"{body['site_uuid']}|{body.get('id') or json.dumps(body, sort_keys=True)}"
    return "backfill-" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def run_backfill(
    settings: Settings, file: str, *, site_uuid: str | None = None, out: TextIO = sys.stderr
) -> int:
    """Send every row; print progress and a summary. Returns the exit code."""
    path = Path(file)
    if not path.is_file():
        print(f"backfill: no such file: {file}", file=out)
        return 2
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    topic = settings.topic(names.RAW_REALGEEKS)
    sent = failed = 0
    invalid: list[str] = []
    started = time.monotonic()

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    try:
        rows = list(read_rows(path))
    except (BackfillError, UnicodeDecodeError, csv.Error) as exc:
        print(f"backfill: cannot read {file}: {exc}", file=out)
        return 2
    total = len(rows)
    for i, (line, row) in enumerate(rows, start=1):
        try:
            body = row_to_body(row, site_uuid)
        except BackfillError as exc:
            invalid.append(f"line {line}: {exc}")
            continue
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        message_id = _message_id(body)
        envelope = {
            "source": "backfill",
            "action": "created",
            "message_id": message_id,
            "timestamp": None,
            "received_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "headers": {"X-Realgeeks-Sync-Backfill": path.name},
            "body": raw,
        }
        producer.produce(
            topic,
            # Keyed as the ingress keys a webhook: the site's partition (app/domain/envelopes.py).
            key=(normalize_site_uuid(body["site_uuid"]) or str(body["site_uuid"])).encode(),
            value=json.dumps(envelope, separators=(",", ":")).encode(),
            on_delivery=on_delivery,
        )
        producer.poll(0)
        sent += 1
        if i % 200 == 0 or i == total:
            done = int(30 * i / max(total, 1))
            print(f"\rbackfill [{'#' * done}{'.' * (30 - done)}] {i}/{total}", end="", file=out)
    undelivered = producer.flush(60)
    failed += undelivered
    print(file=out)
    summary = {
        "rows": total,
        "sent": sent - failed,
        "failed": failed,
        "invalid": len(invalid),
        "seconds": round(time.monotonic() - started, 2),
    }
    for problem in invalid[:20]:
        print(f"backfill: skipped {problem}", file=out)
    print(json.dumps(summary), file=out)
    return 0 if failed == 0 else 1
