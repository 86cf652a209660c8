"""What feeds the dialer: answers classified, opt-out events, do-not-call files, partitions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.core.errors import PermanentApiError, TransientApiError
from realgeeks_sync.app.domain.dialing import (
    ContextSeen,
    Tick,
    answer_for_error,
    answer_for_placement,
    may_dial,
    parse_dialer_record,
    tick_record,
)
from realgeeks_sync.app.domain.dialing.events import DialerRecordError, answer_record
from realgeeks_sync.app.domain.dialing.optouts import (
    OptOutError,
    e164_or_none,
    optout_event,
    parse_optout,
)
from realgeeks_sync.app.operations.dnc import fold, read_numbers
from realgeeks_sync.app.streaming.partitioning import site_of_key, site_partition


@pytest.mark.parametrize(
    ("error", "result", "cause", "retriable"),
    [
        (PermanentApiError("422", status=422), "refused", "rejected", False),
        (PermanentApiError("401", status=401), "refused", "rejected", False),
        (TransientApiError("429", status=429, retry_after=7.0), "refused", "rate_limited", True),
        (TransientApiError("408", status=408), "refused", "rate_limited", True),
        (TransientApiError("refused", cause="not_connected"), "refused", "not_connected", True),
        (TransientApiError("timed out", cause="timeout"), "unknown", "timeout", False),
        (TransientApiError("reset", cause="dropped"), "unknown", "dropped", False),
        (TransientApiError("502", status=502), "unknown", "server_error", False),
        (PermanentApiError("success false", status=200), "unknown", "not_placed", False),
    ],
)
def test_only_answers_that_prove_no_call_are_refusals(
    error: Any, result: str, cause: str, retriable: bool
) -> None:
    answer = answer_for_error("s", "l", "a", error)
    assert (answer.result, answer.cause, answer.retriable) == (result, cause, retriable)
    assert parse_dialer_record(answer_record(answer)) == answer  # the record round-trips


def test_a_placement_round_trips_through_its_record() -> None:
    answer = answer_for_placement("s", "l", "a", "conv_1")
    assert parse_dialer_record(answer_record(answer)) == answer


@given(end=st.one_of(st.none(), st.integers(0, 2**62)))
def test_a_tick_carries_the_opt_outs_end_through_its_record(end: int | None) -> None:
    assert parse_dialer_record(tick_record("s", end)) == Tick("s", optouts_end=end)


@pytest.mark.parametrize("end", [-1, 1.5, "7", True, None, [3]])
def test_a_tick_with_no_usable_end_says_it_is_unknown(end: Any) -> None:
    assert parse_dialer_record({"kind": "tick", "site_uuid": "s", "optouts_end": end}) == Tick("s")


@pytest.mark.parametrize(
    ("event", "read", "dials"),
    [
        (Tick("s", optouts_end=5), 5, True),
        (Tick("s", optouts_end=5), 6, True),
        (Tick("s", optouts_end=5), 4, False),  # an opt-out written before the tick is unread
        (Tick("s", optouts_end=5), None, False),  # nothing read of a partition with records
        (Tick("s", optouts_end=0), None, True),  # an empty partition
        (Tick("s"), 10**6, False),  # the end is unknown (the broker did not answer)
        (ContextSeen("s", "l", {}), 10**6, False),  # calls leave on ticks only
    ],
)
def test_calls_leave_on_a_tick_once_the_opt_outs_before_it_were_read(
    event: Any, read: int | None, dials: bool
) -> None:
    assert may_dial(event, read) is dials


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"kind": "answer"},
        {"kind": "nope", "site_uuid": "s"},
        {"kind": "answer", "site_uuid": "s", "lead_id": "l", "attempt_id": "a", "result": "maybe"},
        # "*" names every site for a pause or a resume only, and the reserved keys never.
        {"kind": "tick", "site_uuid": "*"},
        {
            "kind": "operator",
            "site_uuid": "*",
            "action": "call_now",
            "lead_id": "l",
            "by": "o",
            "at": "t",
        },
        {"kind": "operator", "site_uuid": "*:1", "action": "pause", "by": "o", "at": "t"},
    ],
)
def test_unreadable_dialer_records_raise_the_specific_error(raw: Any) -> None:
    with pytest.raises(DialerRecordError):
        parse_dialer_record(raw)


def test_optout_events_parse_and_refuse_what_is_not_one() -> None:
    event = optout_event(
        site_uuid="s",
        subject="phone",
        value="+18088172382",
        source="operator",
        at="t",
        lead_id="l1",
    )
    parsed = parse_optout(event)
    assert (parsed.subject, parsed.value, parsed.lead_id) == ("phone", "+18088172382", "l1")
    assert (
        optout_event(site_uuid="s", subject="lead", value="l1", source="operator", at="t")[
            "event_id"
        ]
        == optout_event(site_uuid="s", subject="lead", value="l1", source="operator", at="t")[
            "event_id"
        ]
    )
    for bad in (
        {**event, "phone": "12"},
        {**event, "source": "nobody"},
        {**event, "schema": "x"},
        {**event, "subject": "lead", "lead_id": None},
    ):
        with pytest.raises(OptOutError):
            parse_optout(bad)


def test_numbers_come_from_a_csv_with_a_phone_column_or_one_a_line() -> None:
    csv_lines = ["Phone,site_uuid\n", "(808) 817-2382,SITE-A\n", "+44 20 7946 0958,\n", "x,\n"]
    got = list(read_numbers(csv_lines, "US"))
    assert [(g.line, g.number, g.site_uuid) for g in got] == [
        (2, "+18088172382", "site-a"),
        (3, "+442079460958", None),
        (4, None, None),
    ]
    plain = ["# do not call\n", "808-817-2382\n", "\n", "+12125550123\n"]
    assert [(g.line, g.number) for g in read_numbers(plain, "US")] == [
        (2, "+18088172382"),
        (4, "+12125550123"),
    ]


def test_the_list_is_the_fold_of_its_events_in_order() -> None:
    def event(action: str, value: str) -> dict[str, Any]:
        return optout_event(
            site_uuid="s", subject="phone", value=value, source="operator", at="t", action=action
        )

    events = [
        event("opt_out", "+18088172382"),
        event("opt_out", "+12125550123"),
        event("opt_in", "+18088172382"),
        {"schema": "junk"},
    ]
    assert set(fold(events)) == {("s", "phone", "+12125550123")}


@given(st.text(max_size=60))
def test_phone_normalizing_never_raises(text: str) -> None:
    value = e164_or_none(text, "US")
    assert value is None or value.startswith("+")


def test_the_site_partition_is_kafkas_default_partition_of_the_site() -> None:
    # Kafka's UtilsTest vectors: murmur2("21") = -973932308, ("foobar") = -790332482;
    # the partition is toPositive(hash) % partitions.
    assert site_partition("21", 1_000_003) == (-973932308 & 0x7FFFFFFF) % 1_000_003
    assert site_partition("foobar", 97) == (-790332482 & 0x7FFFFFFF) % 97
    site = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
    assert site_partition(site, 8) == site_partition(site_of_key(f"{site}:a27c20af"), 8)
    assert site_of_key("site") == "site"
    with pytest.raises(ValueError):
        site_partition("s", 0)
