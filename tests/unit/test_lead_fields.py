"""The agent's results as lead fields and tags: the rule syntax and what gets written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.domain.lead_fields import (
    DEFAULT_LEAD_FIELD_RULES,
    LeadFieldRule,
    LeadFieldRuleError,
    LeadUpdate,
    lead_update,
    lead_update_id_for,
    parse_rules,
)

DEFAULT = parse_rules(DEFAULT_LEAD_FIELD_RULES)


def results(**values: Any) -> dict[str, Any]:
    return {k: {"value": v, "rationale": "", "json_schema": {}} for k, v in values.items()}


def test_the_default_covers_the_seed_example() -> None:
    update = lead_update(
        results(
            timeframe="within 3 months",
            budget=450000,
            pre_approved="yes",
            viewing_date="Saturday 2pm",
            callback_time="tomorrow 5pm",
        ),
        {},
        DEFAULT,
    )
    assert dict(update.fields) == {"timeframe": "within 3 months"}
    assert update.tags == (
        "Budget 450000",
        "Pre-approved",
        "Tour requested Saturday 2pm",
        "Callback requested tomorrow 5pm",
    )


@pytest.mark.parametrize("empty", [None, "", "  ", "null", "N/A", "unknown", "Not mentioned"])
def test_unknown_or_empty_results_write_nothing(empty: Any) -> None:
    assert lead_update(results(timeframe=empty, budget=empty), {}, DEFAULT) == LeadUpdate()
    assert lead_update({}, {}, DEFAULT) == LeadUpdate()
    assert lead_update(results(unmapped="x"), {}, DEFAULT) == LeadUpdate()


def test_false_is_no_in_a_field_and_no_tag() -> None:
    rules = parse_rules("pre_approved=field:pre_approved,pre_approved=tag:Pre-approved")
    update = lead_update(results(pre_approved=False), {}, rules)
    assert dict(update.fields) == {"pre_approved": "No"} and update.tags == ()


def test_evaluation_criteria_and_the_first_value_wins() -> None:
    rules = parse_rules(
        "criteria:qualified=tag:AI qualified,criteria:booked=field:status,status=field:status"
    )
    criteria = {"qualified": {"result": "success"}, "booked": {"result": "unknown"}}
    update = lead_update(results(status="Active"), criteria, rules)
    assert update.tags == ("AI qualified",)
    assert dict(update.fields) == {"status": "Active"}  # the unknown criterion said nothing
    failed = lead_update({}, {"qualified": {"result": "failure"}}, rules)
    assert failed == LeadUpdate()


def test_rules_are_read_and_checked() -> None:
    assert parse_rules(" a=field:x , criteria:b=tag:B {value} ,") == (
        LeadFieldRule("a", "field", "x"),
        LeadFieldRule("criteria:b", "tag", "B {value}"),
    )
    assert parse_rules("") == ()
    for bad in (
        "a",
        "a=x",
        "a=field:Bad Name",
        "=field:x",
        "a=tag:",
        "criteria:=tag:x",
        "a=tag:" + "x" * 65,
        "a=note:x",
    ):
        with pytest.raises(LeadFieldRuleError):
            parse_rules(bad)


def test_update_ids_are_one_per_conversation() -> None:
    assert lead_update_id_for("conv_1") == lead_update_id_for("conv_1")
    assert lead_update_id_for("conv_1") != lead_update_id_for("conv_2")
    assert len(lead_update_id_for("conv_1")) == 32


@given(
    st.dictionaries(
        st.text(max_size=12),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=200),
            st.lists(st.integers(), max_size=2),
        ),
        max_size=6,
    )
)
def test_any_results_give_bounded_text(values: dict[str, Any]) -> None:
    rules = parse_rules(
        ",".join(
            f"{k}=field:f{i},{k}=tag:T {{value}}" for i, k in enumerate(["timeframe", "budget"])
        )
    )
    collected = {
        **results(**{k: v for k, v in values.items() if k.isidentifier()}),
        "timeframe": {"value": next(iter(values.values()), None)},
    }
    update = lead_update(collected, {}, rules)
    assert all(isinstance(v, str) and 0 < len(v) <= 100 for v in update.fields.values())
    assert all(0 < len(t) <= 64 for t in update.tags)
