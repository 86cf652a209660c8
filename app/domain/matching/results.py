"""What identity resolution decides: the winning Match and the Conflicts not taken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Conflict", "Match", "Resolution"]


@dataclass(frozen=True)
class Match:
    """One rule's verdict: this record is lead `lead_id`, with `score` in [0, 1]."""

    rule: str
    score: float
    lead_id: str

    def to_json(self) -> dict[str, Any]:
        """The event's `match` object."""
        return {"rule": self.rule, "score": self.score, "lead_id": self.lead_id}


@dataclass(frozen=True)
class Conflict:
    """A match that was not taken, and why (outranked, name_mismatch, ambiguous, ...)."""

    rule: str
    score: float
    lead_id: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The event's entry in `conflicts`."""
        return {
            "rule": self.rule,
            "score": self.score,
            "lead_id": self.lead_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Resolution:
    """The winning match (None: a new person) and every match not taken."""

    match: Match | None
    conflicts: tuple[Conflict, ...] = ()
