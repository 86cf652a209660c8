"""Logs: JSON lines, PII masked, secrets redacted."""

from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.core.logs import JsonFormatter, mask_pii


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


# 64 KiB strings that made the old email pattern quadratic (every position of a run of
# local-part characters without "@" was a start that scanned to the run's end: 64 KiB of
# letters took about 17 s) and the shapes that could make either pattern backtrack.
_N = 64 * 1024
ADVERSARIAL = {
    "letters": "a" * _N,
    "digits": "1" * _N,
    "dots": "." * _N,
    "local part, no domain dot": "a" * (_N // 2) + "@" + "b" * (_N // 2),
    "many at signs": "a@" * (_N // 2),
    "dotted run then at": "a." * (_N // 2) + "@",
    "spaced digits": "1 " * (_N // 2),
    "digit then separators": "1" + "(" * _N,
    "six digits then a letter": "1-1-1-1-1-1a " * (_N // 13),
}


def test_masking_is_linear_on_64_kib_adversarial_strings() -> None:
    import time

    for name, text in ADVERSARIAL.items():
        started = time.perf_counter()
        mask_pii(text)
        elapsed = time.perf_counter() - started
        # Linear patterns take 1-15 ms here; the quadratic one took seconds. The bound is
        # loose so a busy machine does not fail it, and tight enough to catch the old cost.
        assert elapsed < 0.25, f"{name}: {elapsed * 1000:.0f} ms for 64 KiB"


_OLD_EMAIL = __import__("re").compile(
    r"([^\s@<>()\[\],;:\"])[^\s@<>()\[\],;:\"]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)


@given(st.text(alphabet="ab1.-@ <:x\n", max_size=60))
def test_linear_email_pattern_finds_what_the_old_one_found(text: str) -> None:
    from realgeeks_sync.app.core.logs import _EMAIL

    assert [m.span() for m in _EMAIL.finditer(text)] == [
        m.span() for m in _OLD_EMAIL.finditer(text)
    ]
