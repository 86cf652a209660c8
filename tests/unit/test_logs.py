"""Logs: JSON lines, PII masked, secrets redacted."""

from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from app.logs import JsonFormatter, mask_pii


def test_masks_emails_and_phones_but_not_ids_or_dates() -> None:
    text = (
        "jack@mail.com called 808-817-2382 and +1 (808) 555 0100 at 2026-11-27T04:05:06Z "
        "site 5ead6dd1-2cb9-4f80-80fc-5716b05c90ba msg a27c20af4497415d9e4e7334dd1d40d2"
    )
    masked = mask_pii(text)
    for secret in ("jack@mail.com", "808-817-2382", "555 0100"):
        assert secret not in masked
    for kept in (
        "2026-11-27T04:05:06Z",
        "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba",
        "a27c20af4497415d9e4e7334dd1d40d2",
    ):
        assert kept in masked


@given(st.emails())
def test_any_email_is_masked(email: str) -> None:
    local, domain = email.rsplit("@", 1)
    masked = mask_pii(f"lead {email} arrived")
    assert f"***@{domain}" in masked
    if len(local) > 1 and set(local) != {"*"}:
        assert email not in masked


def test_json_formatter_masks_extra_fields_and_secrets() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "lead %s", ("a@b.co",), None)
    record.email = "someone@example.com"
    record.api_key = "xi-123"
    record.site = "site-1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "lead ***@b.co"  # one-letter local part: nothing of it shown
    assert "someone@example.com" not in json.dumps(entry)
    assert entry["api_key"] == "**********" and entry["site"] == "site-1"
