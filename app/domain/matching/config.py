"""The tunables of identity resolution, built from settings at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from realgeeks_sync.app.domain.matching.model import IdentityModel, default_model

__all__ = ["MatcherConfig"]


@dataclass(frozen=True)
class MatcherConfig:
    """Tunables of identity resolution (built from settings at start-up).

    Raises:
        ValueError: a value out of range.
    """

    # Chosen with ops/bench_dedup.py on FEBRL1, FEBRL2, FEBRL4 and the synthetic set
    # (one threshold for all): see the README's benchmark table.
    fuzzy_threshold: float = 0.999
    # Leads kept per blocking key (oldest evicted) and leads scored per event, those
    # sharing more keys first: what bounds the cost of a record however large the index
    # (ops/bench_identity.py); FEBRL and synthetic figures are the same at 50 and 64.
    candidate_cap: int = 16
    max_candidates: int = 8
    shared_cap: int = 8  # leads per exact identifier before it stops identifying anyone
    profile_cap: int = 4  # values kept per feature in a lead's profile
    default_region: str = "US"  # phone numbers without "+"
    # The fitted weights (matching/data/identity_model.json unless RGSYNC_IDENTITY_MODEL).
    model: IdentityModel = field(default_factory=default_model, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.fuzzy_threshold <= 1.0:
            raise ValueError("fuzzy_threshold must be in (0, 1]")
        for name in ("candidate_cap", "max_candidates", "shared_cap", "profile_cap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
