"""The matching rules, in order (lead_id, email, phone, name_address, fuzzy), and `resolve`.

The first rule that matches decides; the cheap exact rules always all run, so a
disagreement (email says lead A, phone says lead B) is reported as a `Conflict`. Fuzzy
runs only when no exact rule matched, and only over candidates from blocking keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from realgeeks_sync.app.domain.matching.config import MatcherConfig
from realgeeks_sync.app.domain.matching.household import names_agree, person_evidence
from realgeeks_sync.app.domain.matching.probes import Probe
from realgeeks_sync.app.domain.matching.profile import Profile
from realgeeks_sync.app.domain.matching.results import Conflict, Match, Resolution
from realgeeks_sync.app.domain.matching.scoring import score_pair
from realgeeks_sync.tables.identity import IdentityIndex

__all__ = ["RULES", "Rule", "RuleContext", "candidate_leads", "resolve"]


@dataclass
class RuleContext:
    """What a rule reads: the index, the record, the config; and where it files notes."""

    index: IdentityIndex
    site: str
    probe: Probe
    config: MatcherConfig
    notes: list[Conflict] = field(default_factory=list)
    _profiles: dict[str, Profile | None] = field(default_factory=dict)

    def profile(self, lead_id: str) -> Profile | None:
        """A lead's stored profile, read once per resolution."""
        if lead_id not in self._profiles:
            stored = self.index.profile(self.site, lead_id)
            self._profiles[lead_id] = None if stored is None else Profile.from_json(stored)
        return self._profiles[lead_id]


@dataclass(frozen=True)
class Rule:
    """A named matching rule; `exhaustive` rules run even after an earlier match."""

    name: str
    find: Callable[[RuleContext], Match | None]
    exhaustive: bool = True


def _by_lead_id(ctx: RuleContext) -> Match | None:
    """The Real Geeks lead id (dashes ignored) is already known."""
    source = ctx.probe.source_lead_id
    if not source:
        return None
    canonical = ctx.index.canonical_id(ctx.site, source)
    return Match("lead_id", 1.0, canonical) if canonical else None


def _exact(ctx: RuleContext, rule: str, kind: str, values: Sequence[str]) -> Match | None:
    """Exact identifier lookup with the household rule; the first value decides."""
    found: Match | None = None
    for value in values:
        leads = ctx.index.leads_for(ctx.site, kind, value)
        if not leads:
            continue
        if len(leads) >= ctx.config.shared_cap:
            ctx.notes.append(Conflict(rule, 1.0, None, "shared_identifier"))
            continue
        match = _pick_person(ctx, rule, leads)
        if match is None:
            continue
        if found is None:
            found = match
        elif match.lead_id != found.lead_id:
            ctx.notes.append(Conflict(rule, match.score, match.lead_id, "outranked"))
    return found


def _pick_person(ctx: RuleContext, rule: str, leads: Sequence[str]) -> Match | None:
    """The lead among those sharing an identifier whose first name agrees best."""
    ranked: list[tuple[int, str, Profile]] = []
    for lead in leads:
        profile = ctx.profile(lead) or Profile()
        names = person_evidence(ctx.probe.profile, profile)
        if names is None:
            ctx.notes.append(Conflict(rule, 1.0, lead, "name_mismatch"))
            continue
        ranked.append((names.first, lead, profile))
    if not ranked:
        return None
    top = max(level for level, _, _ in ranked)
    best = [(lead, profile) for level, lead, profile in ranked if level == top]
    chosen, chosen_profile = best[0]  # oldest lead first
    for _, other_profile in best[1:]:
        if names_agree(chosen_profile, other_profile) is None:
            # Two different people fit equally well: this identifier cannot tell.
            for lead, _ in best:
                ctx.notes.append(Conflict(rule, 1.0, lead, "ambiguous"))
            return None
    return Match(rule, 1.0, chosen)


def _by_email(ctx: RuleContext) -> Match | None:
    """A case-folded email the site has seen."""
    return _exact(ctx, "email", "email", ctx.probe.emails)


def _by_phone(ctx: RuleContext) -> Match | None:
    """An E.164 phone the site has seen (placeholder numbers never match)."""
    return _exact(ctx, "phone", "phone", ctx.probe.phones)


def _by_name_address(ctx: RuleContext) -> Match | None:
    """Same normalized first and last name at the same normalized street and ZIP/city."""
    return _exact(ctx, "name_address", "name_address", ctx.probe.name_address)


def candidate_leads(
    index: IdentityIndex, site: str, probe: Probe, config: MatcherConfig
) -> list[str]:
    """The leads fuzzy matching scores for a record: from its blocking keys, at most
    `max_candidates`, those sharing more keys first."""
    counts: dict[str, int] = {}
    for block in probe.query_blocks:
        for lead in index.candidates(site, block):
            counts[lead] = counts.get(lead, 0) + 1
    # Leads that share more blocking keys are likelier; dict order breaks ties (stable).
    return sorted(counts, key=lambda lead: -counts[lead])[: config.max_candidates]


def _by_fuzzy(ctx: RuleContext) -> Match | None:
    """The best-scoring candidate from the blocking keys, above the threshold."""
    passing: list[tuple[float, str, Profile]] = []
    for lead in candidate_leads(ctx.index, ctx.site, ctx.probe, ctx.config):
        profile = ctx.profile(lead)
        if profile is None:
            continue
        scored = score_pair(ctx.probe.profile, profile, ctx.config.model)
        if scored is not None and scored[0] >= ctx.config.fuzzy_threshold:
            passing.append((scored[0], lead, profile))
    if not passing:
        return None
    # Candidates whose first name fits come before those only the model accepted (no
    # personal details to veto on); within a tier the best score, ties in candidate order.
    tier = {lead: person_evidence(ctx.probe.profile, p) is not None for _, lead, p in passing}
    passing.sort(key=lambda item: (not tier[item[1]], -item[0]))
    score, lead, profile = passing[0]
    for other_score, other, other_profile in passing[1:]:
        if tier[other] != tier[lead]:
            break
        if names_agree(profile, other_profile) is None:
            ctx.notes.append(Conflict("fuzzy", score, lead, "ambiguous"))
            ctx.notes.append(Conflict("fuzzy", other_score, other, "ambiguous"))
            return None
    return Match("fuzzy", score, lead)


# The order is the policy: earlier rules win conflicts.
RULES: tuple[Rule, ...] = (
    Rule("lead_id", _by_lead_id),
    Rule("email", _by_email),
    Rule("phone", _by_phone),
    Rule("name_address", _by_name_address),
    Rule("fuzzy", _by_fuzzy, exhaustive=False),
)


def resolve(
    index: IdentityIndex,
    site: str,
    probe: Probe,
    config: MatcherConfig,
    rules: Sequence[Rule] = RULES,
) -> Resolution:
    """Run the rules in order; the first match wins, the others become conflicts."""
    ctx = RuleContext(index=index, site=site, probe=probe, config=config)
    winner: Match | None = None
    others: list[Match] = []
    for rule in rules:
        if winner is not None and not rule.exhaustive:
            continue
        match = rule.find(ctx)
        if match is None:
            continue
        if winner is None:
            winner = match
        else:
            others.append(match)
    won = winner.lead_id if winner else None
    conflicts = [Conflict(m.rule, m.score, m.lead_id, "outranked") for m in others]
    conflicts += ctx.notes
    unique = _dedupe_conflicts(c for c in conflicts if c.lead_id is None or c.lead_id != won)
    return Resolution(match=winner, conflicts=unique)


def _dedupe_conflicts(items: Iterable[Conflict]) -> tuple[Conflict, ...]:
    """Conflicts without repeats, first occurrence kept."""
    seen: set[tuple[str, str | None, str]] = set()
    out: list[Conflict] = []
    for item in items:
        key = (item.rule, item.lead_id, item.reason)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return tuple(out)
