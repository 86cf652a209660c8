"""What the AI agent collected, as Real Geeks lead fields and tags (pure, no I/O).

A rule maps one result of the call's analysis to one lead field or one tag:

    timeframe=field:timeframe           data-collection item "timeframe" -> field "timeframe"
    budget=tag:Budget {value}            -> the tag "Budget $450k" ({value}: the result)
    pre_approved=tag:Pre-approved        -> the tag when the result is true
    criteria:qualified=tag:AI qualified  an evaluation criterion: "success" is true

Rules are written comma-separated (RGSYNC_OUTCOME_LEAD_FIELDS), so a tag holds no comma.
A result that is missing, null, empty or says nothing ("unknown", "n/a", "not mentioned")
writes nothing; a false one writes "No" to a field and no tag. When two rules name the
same field, the first with a value wins. Real Geeks documents neither tags nor these
fields (third-party code only, see the API notes), hence a mapping in configuration.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from realgeeks_sync.app.core.settings import DEFAULT_OUTCOME_LEAD_FIELDS

__all__ = [
    "DEFAULT_LEAD_FIELD_RULES",
    "LeadFieldRule",
    "LeadFieldRuleError",
    "LeadUpdate",
    "lead_update",
    "lead_update_id_for",
    "parse_rules",
]

DEFAULT_LEAD_FIELD_RULES = DEFAULT_OUTCOME_LEAD_FIELDS
CRITERIA_PREFIX = "criteria:"

_NOTHING = frozenset({"", "null", "none", "n/a", "na", "unknown", "not mentioned", "not given"})
_TRUE = frozenset({"true", "yes", "y", "success"})
_FALSE = frozenset({"false", "no", "n", "failure"})
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_VALUE_CHARS = 100
_MAX_TAG_CHARS = 64


class LeadFieldRuleError(ValueError):
    """A lead-field rule that cannot be read."""


@dataclass(frozen=True)
class LeadFieldRule:
    """One result (data-collection id, or ``criteria:<id>``) -> one field or tag."""

    source: str
    target: Literal["field", "tag"]
    name: str  # the field's name, or the tag's text ("{value}" stands for the result)

    @property
    def is_criterion(self) -> bool:
        return self.source.startswith(CRITERIA_PREFIX)

    @property
    def result_id(self) -> str:
        return self.source.removeprefix(CRITERIA_PREFIX)


@dataclass(frozen=True)
class LeadUpdate:
    """The fields and tags one conversation writes on its lead (empty: nothing to write)."""

    fields: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fields or self.tags)


def lead_update_id_for(conversation_id: str) -> str:
    """The outbox key of a conversation's lead update: one PATCH per conversation, ever."""
    raw = f"elevenlabs\x1f{conversation_id}\x1flead_update"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def parse_rules(text: str) -> tuple[LeadFieldRule, ...]:
    """Read comma-separated ``source=field:<name>`` / ``source=tag:<text>`` rules.

    Raises:
        LeadFieldRuleError: a rule without ``=``, an unknown target, an empty source, a field
            name that is not lower_snake_case, or a tag that is empty or too long.
    """
    rules: list[LeadFieldRule] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        source, equals, target = part.partition("=")
        source, target = source.strip(), target.strip()
        kind, colon, name = target.partition(":")
        kind, name = kind.strip(), name.strip()
        if not equals or not colon or not source or source == CRITERIA_PREFIX:
            raise LeadFieldRuleError(
                f"rule {part!r}: write source=field:<name> or source=tag:<text>"
            )
        if kind == "field":
            if not _FIELD_NAME.match(name):
                raise LeadFieldRuleError(f"rule {part!r}: a field name is lower_snake_case")
            rules.append(LeadFieldRule(source, "field", name))
        elif kind == "tag":
            if not name or len(name.replace("{value}", "")) > _MAX_TAG_CHARS:
                raise LeadFieldRuleError(
                    f"rule {part!r}: a tag has 1 to {_MAX_TAG_CHARS} characters"
                )
            rules.append(LeadFieldRule(source, "tag", name))
        else:
            raise LeadFieldRuleError(f"rule {part!r}: the target is field:<name> or tag:<text>")
    return tuple(rules)


def lead_update(
    collected: Mapping[str, Any],
    criteria: Mapping[str, Any],
    rules: tuple[LeadFieldRule, ...],
) -> LeadUpdate:
    """The lead fields and tags the call's results give under ``rules``.

    ``collected`` is ``analysis.data_collection_results`` (id -> {value, ...}) and
    ``criteria`` ``analysis.evaluation_criteria_results`` (id -> {result, ...}).
    """
    fields: dict[str, str] = {}
    tags: list[str] = []
    for rule in rules:
        value = _result(criteria if rule.is_criterion else collected, rule)
        if value is None:
            continue
        if rule.target == "field":
            if rule.name not in fields:
                fields[rule.name] = _text(value)
        elif value is not False:
            tag = rule.name.replace("{value}", "" if value is True else _text(value))
            tag = " ".join(tag.split())[:_MAX_TAG_CHARS]
            if tag and tag not in tags:
                tags.append(tag)
    return LeadUpdate(fields, tuple(tags))


def _result(results: Mapping[str, Any], rule: LeadFieldRule) -> str | float | bool | None:
    """The rule's result as text, a number or a boolean; None when it says nothing."""
    item = results.get(rule.result_id)
    if not isinstance(item, Mapping):
        return None
    value = item.get("result" if rule.is_criterion else "value")
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    word = text.casefold()
    if word in _NOTHING:
        return None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return text[:_MAX_VALUE_CHARS]


def _text(value: str | float | bool) -> str:
    """A result as the text Real Geeks stores."""
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"
    return value
