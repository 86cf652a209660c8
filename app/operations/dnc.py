"""``realgeeks-sync dnc add|remove|list|import``: the do-not-call list, kept on sync.optouts.

The list of record is the topic (optout.v1 events, kept forever): ``list`` folds it, and
``add``, ``remove`` and ``import`` write only what changes it, so running them twice adds
nothing (idempotent). Numbers are stored in E.164; a number without a country code takes
``--region`` (RGSYNC_DEFAULT_REGION). ``list --uncertain`` shows the call attempts whose
outcome is unknown (dead letters of type UncertainCallError), for a person to decide.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import Producer

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.dialing.optouts import (
    OptOut,
    OptOutError,
    e164_or_none,
    optout_event,
    optout_key,
)
from realgeeks_sync.app.domain.dialing.optouts import parse_optout as _parse
from realgeeks_sync.app.domain.normalize import normalize_lead_id
from realgeeks_sync.app.operations.dlq import read_deadletters
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.kafka_config import producer_config
from realgeeks_sync.app.streaming.partitioning import site_partition
from realgeeks_sync.app.streaming.topic_reader import read_records

__all__ = ["DncLine", "fold", "read_numbers", "run_dnc"]

_PHONE_COLUMNS = ("phone", "phone_number", "number", "e164", "telephone", "mobile", "cell")
_PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True)
class DncLine:
    """One line of an import file: its number in E.164 (None: not a valid number)."""

    line: int
    number: str | None
    site_uuid: str | None


def fold(events: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], OptOut]:
    """The current list from the events in order: (site, subject, value) -> the opt-out."""
    listed: dict[tuple[str, str, str], OptOut] = {}
    for raw in events:
        try:
            event = _parse(raw)
        except OptOutError:
            continue
        key = (event.site_uuid, event.subject, event.value)
        if event.action == "opt_out":
            listed.setdefault(key, event)
        else:
            listed.pop(key, None)
    return listed


def read_numbers(text: Iterable[str], region: str) -> Iterator[DncLine]:
    """Numbers from a CSV with a phone column (and optionally site_uuid), or one a line."""
    lines = iter(text)
    first = next(lines, None)
    if first is None:
        return
    header = [h.strip().lower() for h in next(csv.reader([first]))]
    column = next((h for h in header if h in _PHONE_COLUMNS), None)
    if column is not None:
        reader = csv.DictReader(io.StringIO("".join([first, *lines])))
        for n, row in enumerate(reader, start=2):
            row = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
            site = (row.get("site_uuid") or "").strip().lower() or None
            yield DncLine(n, e164_or_none(row.get(column) or "", region), site)
        return
    for n, line in enumerate([first, *lines], start=1):
        value = line.strip()
        if value and not value.startswith("#"):
            yield DncLine(n, e164_or_none(value, region), None)


class _Writer:
    """Produces optout.v1 events to their site's partition and counts deliveries."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic(names.OPTOUTS)
        self.partitions = settings.partitions
        self.failures: list[str] = []
        self.producer = Producer(producer_config(settings, **{"linger.ms": 20}))

    def send(self, event: dict[str, Any], value: str) -> None:
        site = event["site_uuid"]
        self.producer.produce(
            self.topic,
            key=optout_key(site, value).encode(),
            value=json.dumps(event, separators=(",", ":"), sort_keys=True).encode(),
            partition=site_partition(site, self.partitions),
            on_delivery=self._delivered,
        )
        self.producer.poll(0)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def finish(self) -> int:
        """Flush; returns how many records were not delivered."""
        return self.producer.flush(60) + len(self.failures)


def run_dnc(settings: Settings, args: argparse.Namespace) -> int:
    """The ``dnc`` commands; returns the exit code."""
    if args.dnc_command == "list":
        return _list(settings, args)
    site = (args.site_uuid or "").strip().lower() or None
    region = args.region or settings.default_region
    by = args.by or getpass.getuser()
    reason = args.reason or "operator"
    if args.dnc_command == "import":
        path = Path(args.file)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"realgeeks-sync dnc: cannot read {path}: {exc}", file=sys.stderr)
            return 2
        entries = list(read_numbers(text.splitlines(keepends=True), region))
        subject: Literal["lead", "phone"] = "phone"
    else:
        subject = "lead" if args.lead else "phone"
        # A lead id as the pipeline stores it (no dashes or braces, lower case): the dialer
        # matches opt-outs by that exact id, so a pasted "{A27C-...}" would protect nobody.
        entries = [
            DncLine(n, normalize_lead_id(value) if args.lead else e164_or_none(value, region), None)
            for n, value in enumerate(args.values, start=1)
        ]
    action = "opt_in" if args.dnc_command == "remove" else "opt_out"
    return _write(settings, entries, subject, action, site, reason=reason, by=by)


def _write(
    settings: Settings,
    entries: list[DncLine],
    subject: Literal["lead", "phone"],
    action: str,
    default_site: str | None,
    *,
    reason: str,
    by: str,
) -> int:
    invalid = [e.line for e in entries if e.number is None]
    unplaced = [e.line for e in entries if e.number and not (e.site_uuid or default_site)]
    if unplaced:
        print(
            f"realgeeks-sync dnc: {len(unplaced)} entr(ies) without a site: pass --site-uuid "
            f"or a site_uuid column (first at line {unplaced[0]})",
            file=sys.stderr,
        )
        return 2
    listed = fold(read_records(settings, settings.topic(names.OPTOUTS), reader="dnc-reader"))
    writer = _Writer(settings)
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    counts: dict[str, Any] = {"written": 0, "unchanged": 0, "invalid": len(invalid)}
    valid = [e for e in entries if e.number]
    last_progress = time.monotonic()
    for n, entry in enumerate(valid, start=1):
        site = entry.site_uuid or default_site or ""
        value = entry.number or ""
        present = (site, subject, value) in listed
        if present == (action == "opt_out"):
            counts["unchanged"] += 1
        else:
            event = optout_event(
                site_uuid=site,
                subject=subject,
                value=value,
                action=action,
                source="operator",
                at=at,
                reason=reason,
                by=by,
            )
            writer.send(event, value)
            listed[(site, subject, value)] = _parse(event)
            if action == "opt_in":
                listed.pop((site, subject, value), None)
            counts["written"] += 1
        if len(valid) >= 1000 and time.monotonic() - last_progress >= _PROGRESS_EVERY_S:
            last_progress = time.monotonic()
            print(
                f"dnc: {n}/{len(valid)} ({counts['written']} written, "
                f"{counts['unchanged']} unchanged, {counts['invalid']} invalid)",
                file=sys.stderr,
                flush=True,
            )
    undelivered = writer.finish()
    counts["undelivered"] = undelivered
    if invalid:
        counts["invalid_lines"] = invalid[:20]
    print(json.dumps(counts))
    if undelivered:
        print(f"realgeeks-sync dnc: {undelivered} record(s) not delivered", file=sys.stderr)
        return 1
    if invalid:
        print(
            f"realgeeks-sync dnc: {len(invalid)} line(s) are not valid phone numbers "
            f"(first: line {invalid[0]}); the others were written",
            file=sys.stderr,
        )
        return 1
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    site = (args.site_uuid or "").strip().lower() or None
    if args.uncertain:
        letters = [
            r for r in read_deadletters(settings) if r.get("error_type") == "UncertainCallError"
        ]
        shown = 0
        for letter in letters:
            try:
                original = json.loads(letter.get("value") or "{}")
            except ValueError:
                original = {}
            if site and original.get("site_uuid") != site:
                continue
            shown += 1
            print(
                json.dumps(
                    {
                        "first_failed_at": letter.get("first_failed_at"),
                        "site_uuid": original.get("site_uuid"),
                        "lead_id": original.get("lead_id"),
                        "attempt_id": original.get("attempt_id"),
                        "cause": original.get("cause"),
                        "error": str(letter.get("error"))[:300],
                    }
                )
            )
        print(f"# {shown} call attempt(s) with an unknown outcome")
        return 0
    listed = fold(read_records(settings, settings.topic(names.OPTOUTS), reader="dnc-reader"))
    entries = sorted(listed.values(), key=lambda e: (e.site_uuid, e.subject, e.value))
    shown = 0
    for event in entries:
        if site and event.site_uuid != site:
            continue
        shown += 1
        print(
            json.dumps(
                {
                    "site_uuid": event.site_uuid,
                    "subject": event.subject,
                    "value": event.value,
                    "source": event.source,
                    "reason": event.reason,
                    "by": event.by,
                    "at": event.at,
                }
            )
        )
    print(f"# {shown} entr(ies) on the do-not-call list")
    return 0
