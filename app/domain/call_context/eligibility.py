"""Eligibility: an ordered table of named rules; a lead is called when none of them fails.

Each rule is (name, fails): ``fails`` reads the facts of one lead and says whether the rule
stops the call. The table's order is the order of ``reasons`` in the context, so ``reason``
(the first) is the most important one. The four phone rules are exclusive: a lead fails at
most one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple

from realgeeks_sync.app.domain.call_context.codes import (
    INVALID_PHONE,
    MISSING_CONSENT,
    NO_CALLING_WINDOW,
    NO_PHONE,
    OPTED_OUT,
    ROLE_NOT_CALLABLE,
    UNKNOWN_TIMEZONE,
)
from realgeeks_sync.app.domain.call_context.history import Activity
from realgeeks_sync.app.domain.call_context.policy import DEFAULT_POLICY, ContextPolicy
from realgeeks_sync.app.domain.call_context.values import clean_text, flag
from realgeeks_sync.app.domain.calling_window import (
    InvalidPhoneNumberError,
    UnknownTimezoneError,
    local_call_window,
)

__all__ = [
    "ELIGIBILITY_RULES",
    "INELIGIBLE_REASONS",
    "EligibilityFacts",
    "EligibilityRule",
    "consent_refused",
    "ineligible_reasons",
]

# The raw fields that show a phone was given, even when none of them is dialable.
_GIVEN_PHONE_FIELDS = ("phone", "phone2", "phone_raw", "phone2_raw")


@dataclass(frozen=True)
class EligibilityFacts:
    """What the rules read about one lead (the calling window is computed at most once)."""

    lead: Mapping[str, Any]
    lead_view: Mapping[str, Any]
    history: Sequence[Activity]
    do_not_call: bool
    now: datetime
    policy: ContextPolicy

    @cached_property
    def window_error(self) -> str | None:
        """The reason the dialable phone has no calling window, or None when it has one."""
        try:
            window = local_call_window(
                self.lead_view["phone"],
                self.now,
                self.policy.call_window_start,
                self.policy.call_window_end,
            )
        except InvalidPhoneNumberError:
            return INVALID_PHONE
        except UnknownTimezoneError:
            return UNKNOWN_TIMEZONE
        return NO_CALLING_WINDOW if window.next_open_utc is None else None

    @property
    def has_phone(self) -> bool:
        """Whether the lead has a valid E.164 number to dial."""
        return self.lead_view["phone"] is not None

    @property
    def phone_given(self) -> bool:
        """Whether any phone field holds text (valid or not)."""
        return any(clean_text(self.lead.get(k)) for k in _GIVEN_PHONE_FIELDS)


class EligibilityRule(NamedTuple):
    """One named rule: ``fails(facts)`` is True when it stops the call."""

    name: str
    fails: Callable[[EligibilityFacts], bool]


def _opted_out(facts: EligibilityFacts) -> bool:
    """do_not_call is set, or the history holds an opt-out activity."""
    types = facts.policy.opt_out_activity_types
    return bool(facts.do_not_call) or any(a.type in types for a in facts.history)


def _role_not_callable(facts: EligibilityFacts) -> bool:
    """A role outside the callable ones (an empty role is callable)."""
    return bool(facts.lead_view["intent"] == "other")


def _missing_consent(facts: EligibilityFacts) -> bool:
    """An explicit "no" in a consent field, or consent required and none given."""
    policy = facts.policy
    consent = [flag(facts.lead.get(name)) for name in policy.consent_fields if name in facts.lead]
    return False in consent or (policy.require_consent and True not in consent)


def _invalid_phone(facts: EligibilityFacts) -> bool:
    """A phone was given but none is a valid E.164 number."""
    if not facts.has_phone:
        return facts.phone_given
    return facts.window_error == INVALID_PHONE


def _no_phone(facts: EligibilityFacts) -> bool:
    """No phone at all."""
    return not facts.has_phone and not facts.phone_given


def _unknown_timezone(facts: EligibilityFacts) -> bool:
    """The number's time zone cannot be determined."""
    return facts.has_phone and facts.window_error == UNKNOWN_TIMEZONE


def _no_calling_window(facts: EligibilityFacts) -> bool:
    """The number's candidate time zones never share an instant inside the window."""
    return facts.has_phone and facts.window_error == NO_CALLING_WINDOW


ELIGIBILITY_RULES: tuple[EligibilityRule, ...] = (
    EligibilityRule(OPTED_OUT, _opted_out),
    EligibilityRule(ROLE_NOT_CALLABLE, _role_not_callable),
    EligibilityRule(MISSING_CONSENT, _missing_consent),
    EligibilityRule(INVALID_PHONE, _invalid_phone),
    EligibilityRule(NO_PHONE, _no_phone),
    EligibilityRule(UNKNOWN_TIMEZONE, _unknown_timezone),
    EligibilityRule(NO_CALLING_WINDOW, _no_calling_window),
)

# Every reason a context can carry, in the order the rules are checked.
INELIGIBLE_REASONS: tuple[str, ...] = tuple(rule.name for rule in ELIGIBILITY_RULES)


def ineligible_reasons(facts: EligibilityFacts) -> list[str]:
    """Return the name of every failing rule, in the table's order (most important first)."""
    return [rule.name for rule in ELIGIBILITY_RULES if rule.fails(facts)]


def consent_refused(fields: Mapping[str, Any], policy: ContextPolicy = DEFAULT_POLICY) -> bool:
    """True when a consent field holds a clear "no" ("false", "no", "revoked", 0...)."""
    return any(flag(fields.get(name)) is False for name in policy.consent_fields if name in fields)
