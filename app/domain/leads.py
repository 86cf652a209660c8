"""The decision for one Real Geeks lead message (created/updated), and its lead.v1 event.

`decide_lead` is pure apart from the identity index it is given: same store state and
same inputs give the same decision, and it reads no clock (`now` is passed in).

Semantics decided here (see SPEC "Semantics"):
- op: "created" (a new canonical lead), "updated" (the Real Geeks id is known) or
  "merged" (a new Real Geeks id resolved to an existing lead by email, phone,
  name+address or fuzzy; the new id becomes an alias, every identifier is kept).
- `updated` changes only the fields present; null, "" and whitespace clear a field and
  are listed in `cleared`. A `created` never clears: a second registration without a
  phone does not erase the phone we have.
- Stale: an `updated` whose X-Lead-Router-Timestamp is older than the last one applied
  from the same Real Geeks lead id is ignored (`stale=True`, nothing written). A
  `created` older than what we have (it arrived after its updates) only fills fields
  the lead does not have yet. With no (or an unreadable) timestamp the message is
  applied in arrival order and does not move the watermark: the body's `created` is the
  lead's creation time, the same on every update, so it cannot order updates.
- An update for an unknown lead creates it (op "created") unless another rule finds it.
- Replays: the snapshot remembers the decisions for its last few message ids; the same
  message again returns the recorded decision (`replayed=True`) and writes nothing, so
  re-processing after a crash emits the same event (its `lead` is the recorded one for
  the newest message, the current fields for older ones).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from realgeeks_sync.app.domain.matching import (
    Conflict,
    Match,
    MatcherConfig,
    Probe,
    Profile,
    Resolution,
    build_probe,
    merge_profiles,
    resolve,
)
from realgeeks_sync.app.domain.normalize import (
    DROPPED_LEAD_KEYS,
    TimestampError,
    is_blank,
    normalize_lead,
    normalize_site_uuid,
    normalize_timestamp,
    timestamp_ns,
    timestamp_text,
)
from realgeeks_sync.tables.identity import IdentityIndex, LeadSnapshot

__all__ = [
    "LEAD_ACTIONS",
    "LEAD_SCHEMA",
    "LeadDecision",
    "LeadInputError",
    "decide_lead",
    "index_lead",
    "lead_event_id",
]

LEAD_SCHEMA = "lead.v1"
LEAD_ACTIONS = frozenset({"created", "updated"})
RECENT_MESSAGES = 16  # decisions remembered per lead for replays

# Fixed namespace for event ids and ids of leads that arrive without one.
_NAMESPACE = uuid.UUID("4f6b2a3e-9c1d-5e7f-8a2b-3c4d5e6f7a8b")
# Fields of a lead event's `lead` that describe identity, not the CRM record.
_IDENTITY_KEYS = ("emails", "phones", "source_lead_ids")


class LeadInputError(ValueError):
    """A lead message decide_lead cannot act on (no site, unknown action, body not an object)."""


def lead_event_id(message_id: str) -> str:
    """The lead.v1 event id for a message: the same message always gives the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{message_id}|lead"))


@dataclass(frozen=True)
class LeadDecision:
    """What one lead message does to the canonical lead, and the event that says so."""

    site_uuid: str
    lead_id: str
    source_lead_id: str | None
    message_id: str
    action: str
    op: str
    match: Match | None
    conflicts: tuple[Conflict, ...]
    lead: Mapping[str, Any]
    changed: tuple[str, ...]
    cleared: tuple[str, ...]
    source_timestamp: str | None
    processed_at: str
    stale: bool = False
    replayed: bool = False

    @property
    def event_id(self) -> str:
        """Deterministic from the message id."""
        return lead_event_id(self.message_id)

    def to_event(
        self, processed_at: str | None = None, event_id: str | None = None
    ) -> dict[str, Any]:
        """The lead.v1 event (plain JSON), keyed `<site_uuid>:<lead_id>` on the topic."""
        return {
            "schema": LEAD_SCHEMA,
            "event_id": event_id or self.event_id,
            "site_uuid": self.site_uuid,
            "lead_id": self.lead_id,
            "source_lead_id": self.source_lead_id,
            "op": self.op,
            "match": (
                self.match.to_json()
                if self.match
                else {"rule": None, "score": None, "lead_id": None}
            ),
            "lead": dict(self.lead),
            "changed": list(self.changed),
            "cleared": list(self.cleared),
            "conflicts": [c.to_json() for c in self.conflicts],
            "source_timestamp": self.source_timestamp,
            "processed_at": processed_at or self.processed_at,
        }


def _format_now(now: datetime | str) -> str:
    """`now` as normalized UTC text.

    Raises:
        LeadInputError: now is naive or not a timestamp.
    """
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise LeadInputError("now must be timezone-aware")
        return timestamp_text(now)  # its ISO form, normalized, without a reading
    try:
        return normalize_timestamp(now)
    except TimestampError as exc:
        raise LeadInputError("now is not a timestamp") from exc


def _event_lead(snapshot: LeadSnapshot) -> dict[str, Any]:
    """The event's `lead`: the fields plus every identifier the lead ever had."""
    lead = dict(snapshot.fields)
    lead["emails"] = list(snapshot.emails)
    lead["phones"] = list(snapshot.phones)
    lead["source_lead_ids"] = list(snapshot.source_lead_ids)
    return lead


def _is_older(timestamp: str | None, watermark: str | None) -> bool:
    """True when both are known and timestamp is strictly before watermark."""
    if timestamp is None or watermark is None:
        return False
    try:
        return timestamp_ns(timestamp) < timestamp_ns(watermark)
    except TimestampError:
        return False


def _newest(a: str | None, b: str | None) -> str | None:
    """The later of two normalized timestamps (None is unknown)."""
    if a is None or b is None:
        return a or b
    return b if _is_older(a, b) else a


def decide_lead(
    index: IdentityIndex,
    *,
    site_uuid: object,
    action: str,
    body: Mapping[str, Any],
    source_timestamp: object,
    message_id: str,
    now: datetime | str,
    config: MatcherConfig,
) -> LeadDecision:
    """Normalize, resolve and apply one created/updated message; returns the decision.

    Writes the alias, identifier, blocking, profile and snapshot keys to `index` unless
    the message is stale or a replay.

    Raises:
        LeadInputError: no site, an action other than created/updated, a body that is
            not a JSON object, or an unusable `now`.
    """
    site = normalize_site_uuid(site_uuid)
    if site is None:
        raise LeadInputError("lead message without site_uuid")
    if action not in LEAD_ACTIONS:
        raise LeadInputError(f"not a lead action: {action!r}")
    if not isinstance(body, Mapping):
        raise LeadInputError("lead body is not a JSON object")
    processed_at = _format_now(now)
    try:
        stamp = None if source_timestamp is None else normalize_timestamp(source_timestamp)
    except TimestampError:
        stamp = None  # an unreadable header orders nothing; applied in arrival order

    # Resolution and indexing read many of the same keys (identifiers, blocks,
    # profiles): each is read from the store once in this decision.
    index = index.memoized()
    fields = normalize_lead(body, config.default_region)
    source_lead_id = fields.pop("id", None)
    fields.pop("id_raw", None)
    # A lead without an id still needs a stable one: derive it from the message.
    source_key = source_lead_id or uuid.uuid5(_NAMESPACE, f"{site}|{message_id}").hex
    blank = tuple(sorted(k for k, v in body.items() if _is_field(k) and is_blank(v)))

    # Built as index_lead builds a snapshot's probe, so a new lead's is built once.
    emails, phones = _identifiers(fields)
    probe = build_probe(fields, source_lead_id=source_key, emails=emails, phones=phones)
    resolution = resolve(index, site, probe, config)
    match = resolution.match
    old = index.lead(site, match.lead_id) if match else None

    lead_id = match.lead_id if match else source_key
    if old is None:
        op = "created"  # new person, or an alias whose snapshot is gone: (re)created
    else:
        op = "updated" if match and match.rule == "lead_id" else "merged"
        if any(entry.get("message_id") == message_id for entry in old.recent):
            base = _decision(
                site, lead_id, source_lead_id, message_id, action, "created", resolution,
                stamp, processed_at, {},
            )  # fmt: skip
            replay = _replayed(old, base)
            if replay is not None:
                return replay

    watermark = old.source_timestamps.get(source_key) if old else None
    older = _is_older(stamp, watermark)
    if older and action == "updated" and old is not None:
        return _decision(
            site, lead_id, source_lead_id, message_id, action, op, resolution, stamp,
            processed_at, _event_lead(old), stale=True,
        )  # fmt: skip

    new_fields, changed = _apply_fields(
        old.fields if old else {},
        fields,
        blank=set(blank),
        clears=action == "updated",
        fill_only=older,
        is_new=old is None,
    )
    cleared = blank if action == "updated" else ()

    snapshot = _next_snapshot(
        old,
        lead_id=lead_id,
        source_key=source_key,
        source_lead_id=source_lead_id,
        fields=new_fields,
        stamp=None if older else stamp,
        processed_at=processed_at,
    )
    decision = _decision(
        site, lead_id, source_lead_id, message_id, action, op, resolution, stamp,
        processed_at, _event_lead(snapshot), changed=changed, cleared=cleared,
    )  # fmt: skip
    # Only the newest entry keeps the full `lead` (the usual replay is of the message
    # applied last); older entries replay with the current fields.
    # Entries without a `lead` are kept as they are (a lead's 16th message copied 15).
    earlier = tuple(
        {k: v for k, v in e.items() if k != "lead"} if "lead" in e else e for e in snapshot.recent
    )
    snapshot = replace(snapshot, recent=(*earlier, _record(decision))[-RECENT_MESSAGES:])
    same = old is None and new_fields == fields  # the snapshot's probe is the one above
    index_lead(
        index,
        site,
        snapshot,
        config,
        aliases=(source_key,),
        previous=old,
        probe=probe if same else None,
        like=probe,
    )
    return decision


def _decision(
    site: str,
    lead_id: str,
    source_lead_id: str | None,
    message_id: str,
    action: str,
    op: str,
    resolution: Resolution,
    stamp: str | None,
    processed_at: str,
    lead: Mapping[str, Any],
    *,
    changed: tuple[str, ...] = (),
    cleared: tuple[str, ...] = (),
    stale: bool = False,
) -> LeadDecision:
    """A decision built once (a frozen dataclass's `replace` costs a whole new one)."""
    return LeadDecision(
        site_uuid=site,
        lead_id=lead_id,
        source_lead_id=source_lead_id,
        message_id=message_id,
        action=action,
        op=op,
        match=resolution.match,
        conflicts=resolution.conflicts,
        lead=lead,
        changed=changed,
        cleared=cleared,
        source_timestamp=stamp,
        processed_at=processed_at,
        stale=stale,
    )


def _identifiers(fields: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The emails and phones of normalized fields that a snapshot accumulates."""
    emails = [
        e for e in (fields.get("email"), fields.get("second_email")) if isinstance(e, str) and e
    ]
    phones = [p for p in (fields.get("phone"), fields.get("phone2")) if isinstance(p, str) and p]
    return emails, phones


def _is_field(key: object) -> bool:
    """Body keys that are lead fields (not per-message keys or the id)."""
    return isinstance(key, str) and key not in DROPPED_LEAD_KEYS and key != "id"


def _apply_fields(
    old: Mapping[str, Any],
    fields: Mapping[str, Any],
    *,
    blank: set[str],
    clears: bool,
    fill_only: bool,
    is_new: bool,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """New field values and the names that changed.

    Derived keys ("phone_raw", "email_raw", ...) follow their field: a blank field that
    may not clear leaves them alone too, and a stale "_raw" is dropped once the field
    has a usable value again.
    """
    if not old:
        # Nothing to skip, keep or drop: every field is new, and changed when it has a value
        # (what the loop below gives for an empty `old`, without its per-key tests).
        return dict(fields), tuple(sorted([k for k, v in fields.items() if v is not None]))
    out = dict(old)
    changed: set[str] = set()
    skipped = set()
    if not clears and not is_new:
        skipped = {k for k in blank if old.get(k) is not None}
    for key, value in fields.items():
        owner = _owner(key, fields)
        if owner in skipped:
            continue
        if fill_only and old.get(owner) is not None:
            continue
        if out.get(key) != value:  # absent and None are the same "no value"
            changed.add(key)
        out[key] = value
        raw = f"{key}_raw"
        if raw in out and raw not in fields and key in fields and owner == key:
            del out[raw]
            changed.add(raw)
    return out, tuple(sorted(changed))


_DERIVED_SUFFIXES = ("_raw", "_extension", "_valid")


def _owner(key: str, fields: Mapping[str, Any]) -> str:
    """The body field a derived key belongs to ("phone_raw" -> "phone")."""
    if not key.endswith(_DERIVED_SUFFIXES):  # most keys: one test, not three
        return key
    for suffix in _DERIVED_SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in fields:
            return key[: -len(suffix)]
    return key


def _next_snapshot(
    old: LeadSnapshot | None,
    *,
    lead_id: str,
    source_key: str,
    source_lead_id: str | None,
    fields: Mapping[str, Any],
    stamp: str | None,
    processed_at: str,
) -> LeadSnapshot:
    """The snapshot after applying a message: identifiers only ever accumulate."""
    previous = old or LeadSnapshot(lead_id=lead_id, created_at=processed_at)
    emails, phones = _identifiers(fields)
    stamps = dict(previous.source_timestamps)
    if stamp is not None:
        stamps[source_key] = _newest(stamps.get(source_key), stamp) or stamp
    ids = [*previous.source_lead_ids, *([source_lead_id] if source_lead_id else [])]
    return LeadSnapshot(
        lead_id=lead_id,
        source_lead_ids=tuple(dict.fromkeys(ids)),
        emails=tuple(dict.fromkeys([*previous.emails, *emails])),
        phones=tuple(dict.fromkeys([*previous.phones, *phones])),
        fields=dict(fields),
        source_timestamps=stamps,
        last_source_timestamp=_newest(previous.last_source_timestamp, stamp),
        created_at=previous.created_at or processed_at,
        updated_at=processed_at,
        recent=previous.recent,
    )


def index_lead(
    index: IdentityIndex,
    site: str,
    snapshot: LeadSnapshot,
    config: MatcherConfig,
    aliases: Iterable[str] = (),
    previous: LeadSnapshot | None = None,
    probe: Probe | None = None,
    like: Probe | None = None,
) -> None:
    """Write a lead snapshot and its lookup keys.

    With `previous` (the snapshot before this change, whose keys are in the index),
    only keys the lead did not have are written: an update that touches no identifier
    costs no index reads. Without it every key is checked (unchanged keys are not
    rewritten), which also rebuilds an index from snapshots. `probe`: the snapshot's probe,
    when the caller built it from the same fields and identifiers (it is not built again).
    `like`: a probe whose names and places the snapshot's may share (build_probe's like).
    """
    lead_id = snapshot.lead_id
    # Indexing files keys and never looks any up: no query keys (half of blocking's cost).
    if probe is None:
        probe = build_probe(
            snapshot.fields,
            emails=snapshot.emails,
            phones=snapshot.phones,
            query=False,
            like=like,
        )
    if previous is None:
        before = Probe(source_lead_id=None, profile=Profile())
        known: set[str] = set()
    else:
        # A change seldom touches the names and places: the snapshot's are reused then.
        before = build_probe(
            previous.fields,
            emails=previous.emails,
            phones=previous.phones,
            query=False,
            like=probe,
        )
        known = {previous.lead_id, *previous.source_lead_ids}
    for alias in dict.fromkeys((lead_id, *snapshot.source_lead_ids, *aliases)):
        if alias not in known:
            index.add_alias(site, alias, lead_id)
    exact = (
        ("email", probe.emails, before.emails),
        ("phone", probe.phones, before.phones),
        ("name_address", probe.name_address, before.name_address),
    )
    for kind, values, had in exact:
        for value in values:
            if value not in had:
                index.add_lead_for(site, kind, value, lead_id, config.shared_cap)
    for block in probe.blocks:
        if block not in before.blocks:
            index.add_candidate(site, block, lead_id, config.candidate_cap)
    if previous is None or probe.profile != before.profile:
        stored = Profile.from_json(index.profile(site, lead_id))
        merged = merge_profiles(stored, probe.profile, config.profile_cap)
        index.put_profile(site, lead_id, merged.to_json())
    index.put_lead(site, snapshot)


def _record(decision: LeadDecision) -> dict[str, Any]:
    """What a snapshot remembers of a decision to repeat it on a replay."""
    return {
        "message_id": decision.message_id,
        "op": decision.op,
        "match": decision.match.to_json() if decision.match else None,
        "conflicts": [c.to_json() for c in decision.conflicts],
        "changed": list(decision.changed),
        "cleared": list(decision.cleared),
        "source_lead_id": decision.source_lead_id,
        "source_timestamp": decision.source_timestamp,
        "processed_at": decision.processed_at,
        "lead": dict(decision.lead),
    }


def _replayed(snapshot: LeadSnapshot, base: LeadDecision) -> LeadDecision | None:
    """The recorded decision when this message id was already applied to the lead."""
    for entry in snapshot.recent:
        if entry.get("message_id") != base.message_id:
            continue
        match = entry.get("match")
        lead = entry.get("lead")
        return replace(
            base,
            op=str(entry.get("op")),
            match=Match(**match) if isinstance(match, Mapping) else None,
            conflicts=tuple(Conflict(**c) for c in entry.get("conflicts") or ()),
            lead=dict(lead) if isinstance(lead, Mapping) else _event_lead(snapshot),
            changed=tuple(entry.get("changed") or ()),
            cleared=tuple(entry.get("cleared") or ()),
            source_lead_id=entry.get("source_lead_id"),
            source_timestamp=entry.get("source_timestamp"),
            processed_at=str(entry.get("processed_at") or base.processed_at),
            replayed=True,
        )
    return None
