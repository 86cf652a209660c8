"""Raw-topic envelopes: what the ingress keeps of a verified webhook (pure functions).

The envelope keeps the body as the exact text received, so signatures can be checked
again downstream and nothing is lost to re-serialization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.core.errors import MalformedPayloadError
from realgeeks_sync.app.core.sizes import MAX_KEPT_HEADER_CHARS, MAX_KEPT_HEADERS
from realgeeks_sync.app.domain.normalize import TimestampError, normalize_site_uuid, timestamp_ns

__all__ = [
    "ELEVENLABS_KEPT_TYPES",
    "ELEVENLABS_SKIPPED_TYPES",
    "KNOWN_REALGEEKS_ACTIONS",
    "RawRecord",
    "clamp_timestamp",
    "elevenlabs_record",
    "realgeeks_record",
]

KNOWN_REALGEEKS_ACTIONS = frozenset(
    {"created", "updated", "activity_added", "user_updated", "user_deleted"}
)
ELEVENLABS_KEPT_TYPES = frozenset({"post_call_transcription", "call_initiation_failure"})
ELEVENLABS_SKIPPED_TYPES = frozenset({"post_call_audio"})

# Headers worth keeping with the record; anything else (cookies, auth) is dropped.
_KEPT_HEADER_PREFIXES = ("x-lead-router-", "elevenlabs-")
_KEPT_HEADERS = frozenset({"user-agent", "content-type"})


@dataclass(frozen=True)
class RawRecord:
    """One record for a raw topic: its key, the message id and the JSON envelope."""

    key: str
    message_id: str
    action: str
    envelope: dict[str, Any]
    # The sender's timestamp was later than receipt plus the allowed skew: receipt time used.
    timestamp_clamped: bool = False
    # Whom the body says it is about: Real Geeks' site_uuid, ElevenLabs' agent_id (None:
    # not said). The ingress checks it against the secret that signed (per-site secrets).
    subject: str | None = None

    def value(self) -> bytes:
        """The envelope as the topic's UTF-8 JSON value."""
        return json_codec.dumps(self.envelope)


def _clean(value: str) -> str:
    """Header text as valid Unicode: aiohttp keeps undecodable bytes as lone surrogates,
    which cannot be encoded as UTF-8 (a 500 found by fuzzing)."""
    if value.isascii():  # nearly every header; O(1) in CPython, and the round trip is a no-op
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # Bounded in number and length (headers are not signed): the envelope's size must stay
    # within what app/core/sizes.py allows for.
    if not headers:
        return {}
    # items(), not keys() and values(): a CIMultiDict's keys() gives each name once.
    names, values = zip(*headers.items(), strict=True)
    plan = _KEPT_PLANS.get(names)
    if plan is None:
        plan = _kept_plan(names)
        if len(_KEPT_PLANS) >= _MAX_KEPT_PLANS:
            _KEPT_PLANS.clear()
        if sum(map(len, names)) <= _MAX_PLANNED_NAME_CHARS:
            _KEPT_PLANS[names] = plan
    kept: dict[str, str] = {}
    for index, key in plan:
        value = values[index][:MAX_KEPT_HEADER_CHARS]
        # Later values of a repeated name overwrite earlier ones, as they always did.
        kept[key] = value if value.isascii() else _clean(value)
    return kept


def _kept_plan(names: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """Which of a request's headers (by position) _kept_headers keeps, under which name."""
    plan: list[tuple[int, str]] = []
    keys: set[str] = set()
    for index, name in enumerate(names):
        lower = name.lower()
        if lower in _KEPT_HEADERS or lower.startswith(_KEPT_HEADER_PREFIXES):
            if len(keys) == MAX_KEPT_HEADERS:
                break
            key = _clean(name[:128])
            keys.add(key)
            plan.append((index, key))
    return tuple(plan)


# Plans by the request's header names, in order: a sender sends the same names on every
# webhook, and deciding each name's fate was a tenth of the handler's CPU. Bounded in
# entries and in the names' length (a plan is found by the whole tuple).
_KEPT_PLANS: dict[tuple[str, ...], tuple[tuple[int, str], ...]] = {}
_MAX_KEPT_PLANS = 64
_MAX_PLANNED_NAME_CHARS = 4096


def _json_object(body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayloadError("body is not UTF-8") from exc
    try:
        parsed = json_codec.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayloadError("body is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise MalformedPayloadError("body is not a JSON object")
    return text, parsed


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return _clean(value.strip()) if value and value.strip() else None


def clamp_timestamp(
    value: str | None, received_at: str, max_skew_s: float
) -> tuple[str | None, bool]:
    """The timestamp to order updates by, and whether it was clamped.

    X-Lead-Router-Timestamp is not covered by the signature: a value far in the future
    would make every later genuine update of the lead look stale, for good. A value later
    than ``received_at`` plus ``max_skew_s`` is replaced by ``received_at``. A value that
    is not a timestamp is kept: downstream it orders nothing.
    """
    if value is None:
        return None, False
    try:
        sent = timestamp_ns(value)
    except TimestampError:
        return value, False
    if sent > timestamp_ns(received_at) + int(max_skew_s * 1_000_000_000):
        return received_at, True
    return value, False


def realgeeks_record(
    body: bytes,
    headers: Mapping[str, str],
    received_at: str,
    *,
    max_timestamp_skew_s: float | None = None,
) -> RawRecord:
    """Build the realgeeks.webhooks.raw record for a verified Real Geeks webhook.

    With ``max_timestamp_skew_s``, a X-Lead-Router-Timestamp later than receipt plus that
    skew becomes the receipt time (``clamp_timestamp``); the header itself is kept as sent.

    Raises:
        MalformedPayloadError: the body is not a JSON object or carries no action.
    """
    text, parsed = _json_object(body)
    action = _header(headers, "X-Lead-Router-Action")
    if action is None:
        body_action = parsed.get("action")
        action = (
            body_action.strip() if isinstance(body_action, str) and body_action.strip() else None
        )
    if action is None:
        raise MalformedPayloadError("no action in X-Lead-Router-Action or the body")
    message_id = _header(headers, "X-Lead-Router-Message-Id") or hashlib.sha256(body).hexdigest()
    # The site as every other topic keys it (trimmed, lower-cased): the raw record's
    # partition is its site's, where normalize_leads writes the site's tables and stories.
    key = normalize_site_uuid(parsed.get("site_uuid")) or message_id
    timestamp, clamped = _header(headers, "X-Lead-Router-Timestamp"), False
    if max_timestamp_skew_s is not None:
        timestamp, clamped = clamp_timestamp(timestamp, received_at, max_timestamp_skew_s)
    envelope = {
        "source": "realgeeks",
        "action": action,
        "message_id": message_id,
        "timestamp": timestamp,
        "received_at": received_at,
        "headers": _kept_headers(headers),
        "body": text,
    }
    return RawRecord(
        key=key,
        message_id=message_id,
        action=action,
        envelope=envelope,
        timestamp_clamped=clamped,
        subject=key if key != message_id else None,
    )


def elevenlabs_record(body: bytes, headers: Mapping[str, str], received_at: str) -> RawRecord:
    """Build the elevenlabs.webhooks.raw record for a verified ElevenLabs webhook.

    Raises:
        MalformedPayloadError: not a JSON object, or no string ``type``.
    """
    text, parsed = _json_object(body)
    event_type = parsed.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise MalformedPayloadError("no event type in the body")
    # ElevenLabs retries send the identical body, so its hash is a stable message id.
    message_id = hashlib.sha256(body).hexdigest()
    data = parsed.get("data")
    conversation = data.get("conversation_id") if isinstance(data, dict) else None
    key = conversation if isinstance(conversation, str) and conversation else message_id
    timestamp = parsed.get("event_timestamp")
    envelope = {
        "source": "elevenlabs",
        "action": event_type,
        "message_id": message_id,
        "timestamp": str(timestamp) if isinstance(timestamp, (int, float, str)) else None,
        "received_at": received_at,
        "headers": _kept_headers(headers),
        "body": text,
    }
    agent = data.get("agent_id") if isinstance(data, dict) else None
    return RawRecord(
        key=key,
        message_id=message_id,
        action=event_type,
        envelope=envelope,
        subject=agent if isinstance(agent, str) and agent else None,
    )
