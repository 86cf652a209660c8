"""The names a call context carries: its schema and the reasons a lead is not called."""

from __future__ import annotations

__all__ = [
    "INVALID_PHONE",
    "MISSING_CONSENT",
    "NO_CALLING_WINDOW",
    "NO_PHONE",
    "OPTED_OUT",
    "ROLE_NOT_CALLABLE",
    "SCHEMA",
    "UNKNOWN_TIMEZONE",
]

SCHEMA = "call_context.v1"

# The order in which they are checked is eligibility.ELIGIBILITY_RULES.
OPTED_OUT = "opted_out"
ROLE_NOT_CALLABLE = "role_not_callable"
MISSING_CONSENT = "missing_consent"
INVALID_PHONE = "invalid_phone"
NO_PHONE = "no_phone"
UNKNOWN_TIMEZONE = "unknown_timezone"
NO_CALLING_WINDOW = "no_calling_window"
