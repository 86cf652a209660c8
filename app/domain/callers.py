"""Who is calling: leads by phone number, across sites, for inbound calls (pure, no I/O).

Every call context written for a lead also becomes a ``caller.v1`` record on the compacted
``sync.callers`` topic (key ``<site_uuid>:<lead_id>``): the lead's numbers (every E.164
number its identity index holds, so the number it called from last year still finds it)
and the context's dynamic variables. Each worker folds that topic into a directory by
number (app/streaming/caller_directory.py), which answers ElevenLabs' pre-call webhook
and places an inbound call's outcome.

One number may belong to several leads: a household in one site, or one person in two
sites. Only the sites the called agent serves count (``served_by``: each site's agent in
the sites file, else the environment's); ``choose`` decides among their leads, in this
order:

1. the lead the AI called (or talked to) most recently: a callback most likely answers
   our own call;
2. else the lead whose context changed most recently (its latest activity);
3. else the smallest (site, lead id), so the choice never depends on arrival order.

The answer always carries the same variable names (those of an outbound call's context,
plus ``call_attempt_id``): a known caller's values, else neutral defaults, since a
variable the agent's prompt uses and the answer lacks fails the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from realgeeks_sync.app.core.sites import Sites
from realgeeks_sync.app.domain.call_context import build_call_context
from realgeeks_sync.app.domain.dialing.optouts import e164_or_none

__all__ = [
    "CALLER_SCHEMA",
    "INITIATION_TYPE",
    "Candidate",
    "agent_serves",
    "answer_variables",
    "caller_record",
    "choose",
    "initiation_answer",
    "neutral_variables",
    "served_by",
]

CALLER_SCHEMA = "caller.v1"
INITIATION_TYPE = "conversation_initiation_client_data"
MAX_NUMBERS = 16  # numbers kept per lead in the directory

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Candidate:
    """One lead a number belongs to, with what the choice and the answer need."""

    site_uuid: str
    lead_id: str
    as_of: str
    last_ai_call_at: str
    dynamic_variables: Mapping[str, Any]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Candidate | None:
        """Read a caller.v1 record (None when it is not one)."""
        site, lead = record.get("site_uuid"), record.get("lead_id")
        variables = record.get("dynamic_variables")
        if not (isinstance(site, str) and site and isinstance(lead, str) and lead):
            return None
        return cls(
            site_uuid=site,
            lead_id=lead,
            as_of=_text(record.get("as_of")),
            last_ai_call_at=_text(record.get("last_ai_call_at")),
            dynamic_variables=variables if isinstance(variables, Mapping) else {},
        )


def neutral_variables() -> dict[str, Scalar]:
    """Every variable an outbound call gives the agent, with a neutral value ("", 0, false).

    Built from the context of a lead about whom nothing is known, so the names can never
    drift from what the dialer sends (call_context's variables, plus ``call_attempt_id``).
    """
    blank = build_call_context(
        site_uuid="-",
        lead_id="-",
        lead={},
        activities=[],
        do_not_call=False,
        now=datetime(2000, 1, 1, tzinfo=UTC),
        event_id="-",
    )
    variables = {name: _neutral(value) for name, value in blank["dynamic_variables"].items()}
    variables["call_attempt_id"] = ""
    return variables


def _neutral(value: Any) -> Scalar:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 0
    return ""


def caller_record(context: Mapping[str, Any], phones: Iterable[str]) -> dict[str, Any]:
    """The sync.callers value for a lead, from its call context and its known numbers."""
    lead = context.get("lead")
    lead = lead if isinstance(lead, Mapping) else {}
    interactions = context.get("previous_interactions")
    calls = interactions.get("ai_calls") if isinstance(interactions, Mapping) else None
    numbers = dict.fromkeys(
        n for n in (e164_or_none(p) for p in (lead.get("phone"), lead.get("phone2"), *phones)) if n
    )
    variables = context.get("dynamic_variables")
    return {
        "schema": CALLER_SCHEMA,
        "site_uuid": context.get("site_uuid"),
        "lead_id": context.get("lead_id"),
        "phones": list(numbers)[:MAX_NUMBERS],
        "dynamic_variables": dict(variables) if isinstance(variables, Mapping) else {},
        "eligible": context.get("eligible") is True,
        "as_of": context.get("as_of"),
        "last_ai_call_at": calls.get("last_at") if isinstance(calls, Mapping) else None,
    }


def agent_serves(configured_agent: str, agent_id: object) -> bool:
    """Whether the called agent serves a site whose agent is ``configured_agent``; a site
    with none configured is served by any agent."""
    return not configured_agent or agent_id == configured_agent


def served_by(sites: Sites, agent_id: object) -> Callable[[str], bool]:
    """Whether the called agent serves a site: the site's agent (sites file, else the
    environment's); a site the file does not list is served by none."""

    def served(site_uuid: str) -> bool:
        config = sites.get(site_uuid)
        return config is not None and agent_serves(config.elevenlabs_agent_id, agent_id)

    return served


def choose(
    candidates: Sequence[Candidate], served: Callable[[str], bool]
) -> tuple[Candidate | None, int]:
    """The lead an inbound call is from, among the sites the called agent serves, and how
    many leads there were to choose from (see the module's docstring for the order)."""
    pool = [c for c in candidates if served(c.site_uuid)]
    if not pool:
        return None, 0
    # Oldest-first by the keys, then reversed: the latest call, then the latest context,
    # win; for equal times the smallest (site, lead) wins.
    ordered = sorted(pool, key=lambda c: (c.site_uuid, c.lead_id))
    best = max(ordered, key=lambda c: (c.last_ai_call_at, c.as_of))
    return best, len(pool)


def answer_variables(
    defaults: Mapping[str, Scalar], candidate: Candidate | None
) -> dict[str, Scalar]:
    """Every default variable, with the caller's value where it has a usable one."""
    if candidate is None:
        return dict(defaults)
    known = candidate.dynamic_variables
    return {
        name: value if isinstance(value := known.get(name), str | int | float | bool) else default
        for name, default in defaults.items()
    }


def initiation_answer(variables: Mapping[str, Scalar]) -> dict[str, Any]:
    """The pre-call webhook's answer (section 1.4 of the API notes)."""
    return {"type": INITIATION_TYPE, "dynamic_variables": dict(variables)}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
