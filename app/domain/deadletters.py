"""The dead-letter topic: what could not be processed, with why, so it can be replayed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["SCHEMA", "deadletter_record", "decode_original"]

SCHEMA = "deadletter.v1"


def deadletter_record(
    *,
    topic: str,
    key: bytes | str | None,
    value: bytes | str | None,
    error: BaseException | str,
    error_type: str | None = None,
    attempts: int = 1,
    first_failed_at: datetime | None = None,
    retriable: bool = False,
) -> dict[str, Any]:
    """The sync.deadletter value for one failed record (original kept byte-for-byte)."""
    key_text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "topic": topic,
        "key": key_text,
        "value": None,
        "error": str(error)[:2000],
        "error_type": error_type
        or (type(error).__name__ if isinstance(error, BaseException) else "Error"),
        "retriable": retriable,
        "attempts": attempts,
        "first_failed_at": (first_failed_at or datetime.now(UTC))
        .isoformat()
        .replace("+00:00", "Z"),
    }
    if isinstance(value, bytes):
        try:
            record["value"] = value.decode("utf-8")
        except UnicodeDecodeError:
            record["value_b64"] = base64.b64encode(value).decode("ascii")
    else:
        record["value"] = value
    return record


def decode_original(record: dict[str, Any]) -> bytes:
    """The original value bytes of a dead letter, for replay."""
    if record.get("value_b64"):
        return base64.b64decode(record["value_b64"])
    value = record.get("value")
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")
