"""Build the ``calls.context`` value for an AI call from a normalized lead (pure, no I/O).

The context holds the lead, its property interests, previous interactions, strategy
rules, flat ``dynamic_variables`` for ElevenLabs, and ``eligible``/``reason``.

Eligibility: ``reason`` is the first failing rule, in this order (``reasons`` lists all;
the order is the table ``eligibility.ELIGIBILITY_RULES``):

    opted_out           do_not_call is set, or the history holds an ``opted_out`` activity
    role_not_callable   a role outside Buyer / Seller / Buyer and Seller / Renter /
                        Potential Seller (e.g. Agent, Lender); an empty role is callable,
                        since many genuine sign-ups carry none
    missing_consent     the lead carries an explicit "no" in a consent field, or the policy
                        requires consent (``require_consent``) and none is given. Real Geeks
                        sends no consent field today, so requiring it is off by default:
                        turning it on is a legal/product decision
    invalid_phone       a phone was given but none is a valid E.164 number
    no_phone            no phone at all
    unknown_timezone    the number's time zone cannot be determined: no local time is
                        known, so it is never dialled automatically
    no_calling_window   the number's candidate time zones never share an instant inside
                        the calling window (see app/domain/calling_window.py): never safe to dial

Determinism: the output depends only on the arguments, so pass the message's source
timestamp as ``now`` (not the processing time) and a replay yields an identical event.
``previous_context`` only fills ``supersedes_event_id``/``changed_fields``; when it is
this very event (a replay), its values are carried over unchanged.

The modules, one piece each: codes (schema and reason names), policy, values (readers of
untrusted values), history (activities parsed, previous interactions), lead_view,
interests (viewed properties), strategy, eligibility (the rule table), variables (ElevenLabs
dynamic variables), fingerprint (material changes) and builder (all of them together).
"""

from realgeeks_sync.app.domain.call_context.builder import build_call_context
from realgeeks_sync.app.domain.call_context.codes import (
    INVALID_PHONE,
    MISSING_CONSENT,
    NO_CALLING_WINDOW,
    NO_PHONE,
    OPTED_OUT,
    ROLE_NOT_CALLABLE,
    SCHEMA,
    UNKNOWN_TIMEZONE,
)
from realgeeks_sync.app.domain.call_context.eligibility import (
    ELIGIBILITY_RULES,
    INELIGIBLE_REASONS,
    EligibilityFacts,
    EligibilityRule,
    consent_refused,
)
from realgeeks_sync.app.domain.call_context.fingerprint import changed_fields, materially_changed
from realgeeks_sync.app.domain.call_context.policy import DEFAULT_POLICY, ContextPolicy

__all__ = [
    "DEFAULT_POLICY",
    "ELIGIBILITY_RULES",
    "INELIGIBLE_REASONS",
    "INVALID_PHONE",
    "MISSING_CONSENT",
    "NO_CALLING_WINDOW",
    "NO_PHONE",
    "OPTED_OUT",
    "ROLE_NOT_CALLABLE",
    "SCHEMA",
    "UNKNOWN_TIMEZONE",
    "ContextPolicy",
    "EligibilityFacts",
    "EligibilityRule",
    "build_call_context",
    "changed_fields",
    "consent_refused",
    "materially_changed",
]
