"""Whether text in E.164 form is a valid number: parsed once per text, the answer shared.

A new lead's number was parsed by libphonenumber three times: as the lead's phone
(``normalize_phone``), for its opt-out keys (``e164_or_none``) and for the call context's
dialable number (``dialable``): three fifths of the parsing a new lead cost (cProfile of
``plan_realgeeks``, 5,000 new leads: 2.5 of 13.5 s in ``region_code_for_number`` alone).
``normalize_phone`` now records what it learnt about the E.164 form it produced, and the
other two read it here.
"""

from __future__ import annotations

import threading

import phonenumbers

__all__ = ["MAX_E164_ANSWERS", "learn_e164", "parse_valid_e164", "valid_e164"]

# Bounded: a worker sees every lead of its partitions; 16k answers of at most 40
# characters is ~2 MB. Longer text is parsed every time (no valid number is that long).
MAX_E164_ANSWERS = 16_384
_MAX_KEY_CHARS = 40

_answers: dict[str, str | None] = {}
_UNKNOWN = object()
# A library function: any thread may ask, and eviction iterates the dict.
_lock = threading.Lock()


def valid_e164(text: str) -> str | None:
    """``text`` (a number starting with +) in E.164 form when libphonenumber deems it
    valid, else None."""
    answer = _answers.get(text, _UNKNOWN)
    if answer is not _UNKNOWN:
        return answer  # type: ignore[return-value]
    answer = parse_valid_e164(text, None)
    learn_e164(text, answer)
    return answer


def learn_e164(text: str, answer: str | None) -> None:
    """Record ``valid_e164(text)``'s answer, known from a parse done elsewhere."""
    if len(text) > _MAX_KEY_CHARS:
        return
    with _lock:
        if len(_answers) >= MAX_E164_ANSWERS:
            # Oldest first (dicts keep insertion order): a lead's numbers are asked about
            # within the same message, rarely long after.
            del _answers[next(iter(_answers))]
        _answers[text] = answer


def parse_valid_e164(text: str, region: str | None) -> str | None:
    """``text`` read in ``region`` (None: it starts with +) as a valid E.164 number, or
    None; parsed now, no answer kept."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

