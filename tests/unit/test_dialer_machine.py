"""The dialer's transitions one rule at a time, without a broker (app/domain/dialing/machine.py)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from realgeeks_sync.app.domain.dialing import (
    CallAnswer,
    CallEnded,
    ContextSeen,
    DialerPolicy,
    DialerRecordError,
    LeadStatus,
    OperatorAction,
    OptOut,
    Step,
    Tick,
    all_sites_key,
    parse_dialer_record,
    step,
)
from realgeeks_sync.app.domain.dialing.store import DialerStore

SITE = "site-1"
HONOLULU = "+18088172382"
HONOLULU_2 = "+18088172383"
NEW_YORK = "+12125550123"
HST = ZoneInfo("Pacific/Honolulu")
NOON_HST = datetime(2026, 6, 1, 12, 0, tzinfo=HST).astimezone(UTC)
POLICY = DialerPolicy()


class Dialer:
    """The state machine over dict tables, with the clock in the test's hands."""

    def __init__(self, now: datetime = NOON_HST, policy: DialerPolicy = POLICY) -> None:
        self.tables: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({}, {}, {})
        self.store = DialerStore(*self.tables)
        self.now = now
        self.policy = policy
        self.calls: list[Any] = []

    def apply(self, event: Any, *, dispatching: bool = True) -> Step:
        result = step(self.store, event, self.now, self.policy, dispatching=dispatching)
        for table, key, value in self.store.changes(result, event.site_uuid):
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        self.calls += result.calls
        return result

    def lead(self, lead_id: str) -> Any:
        return self.store.lead(SITE, lead_id)

    def new_lead(self, lead_id: str, phone: str = HONOLULU, **context: Any) -> Step:
        return self.apply(ContextSeen(SITE, lead_id, ctx(lead_id, phone, self.now, **context)))

    def answer(self, call: Any, result: str = "placed", **extra: Any) -> Step:
        if result == "placed":
            extra.setdefault("conversation_id", "conv-" + call.attempt_id)
        return self.apply(CallAnswer(SITE, call.lead_id, call.attempt_id, result, **extra))  # type: ignore[arg-type]

    def opt_out(self, subject: str, value: str, action: str = "opt_out") -> Step:
        lead = value if subject == "lead" else None
        phone = value if subject == "phone" else None
        source = "operator" if action == "opt_in" else "realgeeks"
        event = OptOut("e", SITE, subject, lead, phone, action, source, self.now.isoformat())  # type: ignore[arg-type]
        return self.apply(event)


def ctx(
    lead_id: str,
    phone: str | None,
    as_of: datetime,
    *,
    trigger: str = "created",
    eligible: bool = True,
    reason: str | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    return {
        "schema": "call_context.v1",
        "event_id": f"ctx-{lead_id}-{as_of.timestamp()}",
        "site_uuid": SITE,
        "lead_id": lead_id,
        "as_of": as_of.isoformat(),
        "lead": {"phone": phone, "phone2": None, "created": created},
        "eligible": eligible,
        "reason": reason,
        "trigger": trigger,
        "dynamic_variables": {"lead_first_name": "Ana", "lead_id": lead_id, "site_uuid": SITE},
    }


def test_an_eligible_new_lead_in_its_window_is_called_once_with_its_variables() -> None:
    d = Dialer()
    result = d.new_lead("l1")
    (call,) = result.calls
    assert call.phone == HONOLULU
    assert call.variables["lead_id"] == "l1" and call.variables["site_uuid"] == SITE
    assert call.variables["call_attempt_id"] == call.attempt_id
    assert call.variables["lead_first_name"] == "Ana"
    assert d.lead("l1").status is LeadStatus.CALLING
    assert set(d.store.site(SITE).in_flight) == {call.attempt_id}
    # The same context again (a redelivery) sends nothing more.
    assert d.new_lead("l1").calls == ()


def test_a_night_lead_that_opts_out_while_waiting_is_never_called() -> None:
    night = datetime(2026, 6, 1, 23, 0, tzinfo=HST).astimezone(UTC)
    d = Dialer(night)
    assert d.new_lead("l1").calls == ()
    record = d.lead("l1")
    assert record.status is LeadStatus.WAITING and record.reason == "outside_calling_hours"
    assert datetime.fromtimestamp(record.due, HST) == datetime(2026, 6, 2, 8, 0, tzinfo=HST)
    d.now = night + timedelta(minutes=20)
    d.opt_out("lead", "l1")
    d.now = datetime(2026, 6, 2, 8, 10, tzinfo=HST).astimezone(UTC)
    assert d.apply(Tick(SITE)).calls == ()
    assert d.lead("l1").status is LeadStatus.OPTED_OUT
    assert d.calls == []


def test_a_lead_opt_out_blocks_its_numbers_under_any_other_lead() -> None:
    d = Dialer(datetime(2026, 6, 1, 23, 0, tzinfo=HST).astimezone(UTC))
    d.new_lead("l1", HONOLULU)
    result = d.opt_out("lead", "l1")
    (event,) = [e for e in result.emits if e.topic == "optouts"]
    assert event.key == f"{SITE}:{HONOLULU}"
    assert (event.value["subject"], event.value["phone"]) == ("phone", HONOLULU)
    d.now = NOON_HST + timedelta(days=1)
    result = d.new_lead("l2", HONOLULU)
    assert result.calls == ()
    assert d.lead("l2").status is LeadStatus.OPTED_OUT and d.lead("l2").reason == "do_not_call"


def test_a_number_on_the_list_is_never_called_and_an_operator_can_lift_it() -> None:
    d = Dialer()
    d.opt_out("phone", HONOLULU)
    assert d.new_lead("l1", HONOLULU).calls == ()
    assert d.new_lead("l2", NEW_YORK).calls != ()  # another number is callable
    d.opt_out("phone", HONOLULU, action="opt_in")
    assert d.store.dnc(SITE, "phone", HONOLULU) is None
    assert d.new_lead("l3", HONOLULU).calls != ()


def test_an_unknown_answer_makes_the_attempt_uncertain_for_good() -> None:
    d = Dialer()
    (call,) = d.new_lead("l1").calls
    result = d.answer(call, "unknown", cause="timeout", reason="timed out")
    assert d.lead("l1").status is LeadStatus.UNCERTAIN
    (letter,) = result.deadletters
    assert letter.error_type == "UncertainCallError" and "not retried" in letter.error
    assert letter.original["attempt_id"] == call.attempt_id
    assert ("uncertain", "timeout") in result.counts
    for hours in (1, 5, 30):
        d.now = NOON_HST + timedelta(hours=hours)
        d.apply(Tick(SITE))
        d.new_lead("l1", trigger="updated")
    assert d.calls == [call]


def test_a_request_nobody_waits_for_becomes_uncertain_not_resent() -> None:
    d = Dialer()
    (call,) = d.new_lead("l1").calls
    d.now += timedelta(seconds=30)
    d.apply(Tick(SITE, frozenset({call.attempt_id})))  # still in flight here: left alone
    assert d.lead("l1").status is LeadStatus.CALLING
    d.now += timedelta(seconds=30)
    live = d.apply(Tick(SITE, frozenset({call.attempt_id})))
    assert live.deadletters == () and d.lead("l1").status is LeadStatus.CALLING
    lost = d.apply(Tick(SITE))  # a restarted worker: nobody waits for it
    assert d.lead("l1").status is LeadStatus.UNCERTAIN
    assert lost.deadletters[0].original["cause"] == "lost"
    # A late answer that shows the call exists still records it.
    d.answer(call, "placed")
    assert d.lead("l1").status is LeadStatus.PLACED
    assert d.calls == [call]


def test_a_refusal_that_proves_no_call_is_retried_later_and_a_rejection_is_not() -> None:
    d = Dialer()
    (call,) = d.new_lead("l1").calls
    d.answer(call, "refused", cause="rate_limited", retriable=True, retry_after=90.0)
    record = d.lead("l1")
    assert record.status is LeadStatus.WAITING
    assert record.due == (NOON_HST + timedelta(seconds=90)).timestamp()
    assert d.store.site(SITE).in_flight == {}
    d.now += timedelta(seconds=91)
    (again,) = d.apply(Tick(SITE)).calls
    assert again.attempt_id != call.attempt_id
    result = d.answer(again, "refused", cause="rejected", reason="HTTP 422: to_number")
    assert d.lead("l1").status is LeadStatus.SKIPPED and d.lead("l1").reason == "call_rejected"
    assert result.deadletters[0].error_type == "CallRejectedError"


def test_no_more_calls_in_flight_than_lines_and_the_next_lead_goes_in_order() -> None:
    d = Dialer()
    first = [d.new_lead(f"l{n}").calls for n in range(1, 5)]
    assert [len(c) for c in first] == [1, 1, 0, 0]
    assert len(d.store.site(SITE).in_flight) == 2
    d.answer(first[0][0], "placed")
    assert d.apply(Tick(SITE)).calls == ()  # placed calls hold their lines
    d.now += timedelta(minutes=3)
    result = d.apply(
        CallEnded(SITE, "l1", "conv-" + first[0][0].attempt_id, "completed", first[0][0].attempt_id)
    )
    (call,) = result.calls
    assert call.lead_id == "l3"  # the first waiting lead, not l4
    assert d.lead("l1").status is LeadStatus.DONE


def test_the_window_is_checked_when_the_request_leaves_not_when_it_was_planned() -> None:
    evening = datetime(2026, 6, 1, 20, 40, tzinfo=HST).astimezone(UTC)
    d = Dialer(evening, DialerPolicy(max_concurrent_calls=1))
    (busy,) = d.new_lead("l1").calls
    assert d.new_lead("l2").calls == ()  # waits for a line, inside its window
    d.now = datetime(2026, 6, 1, 20, 59, tzinfo=HST).astimezone(UTC)
    d.answer(busy, "refused", cause="rejected")  # the line is free at 20:59
    assert d.lead("l2").status is LeadStatus.WAITING  # 2 minutes to 21:00: too late
    assert datetime.fromtimestamp(d.lead("l2").due, HST).hour == 8
    d.now = datetime(2026, 6, 2, 8, 0, tzinfo=HST).astimezone(UTC)
    (call,) = d.apply(Tick(SITE)).calls
    assert call.lead_id == "l2"


def test_a_number_without_a_known_zone_is_not_called() -> None:
    d = Dialer()
    result = d.new_lead("l1", "+80012345678")
    assert result.calls == ()
    assert d.lead("l1").reason == "unknown_timezone"
    assert ("skipped", "unknown_timezone") in result.counts


def test_only_fresh_contexts_of_new_leads_start_calls() -> None:
    d = Dialer()
    old = ctx("l1", HONOLULU, NOON_HST - timedelta(hours=2))
    assert d.apply(ContextSeen(SITE, "l1", old)).calls == ()
    assert d.lead("l1").reason == "stale_context"
    assert d.new_lead("l2", trigger="backfill").calls == ()
    assert d.lead("l2").reason == "backfill"
    # An update of a lead the dialer never saw is not a new lead...
    assert d.new_lead("l3", trigger="updated").calls == ()
    assert d.lead("l3").reason == "not_a_new_lead"
    # ... unless the lead itself was created within the hour.
    recent = (NOON_HST - timedelta(minutes=10)).isoformat()
    assert d.new_lead("l4", trigger="updated", created=recent).calls != ()


def test_a_lead_that_gets_its_phone_later_is_called_if_still_new() -> None:
    d = Dialer()
    assert d.new_lead("l1", None, eligible=False, reason="no_phone").calls == ()
    d.now += timedelta(minutes=10)
    assert d.new_lead("l1", HONOLULU, trigger="updated").calls != ()


def test_redials_after_nobody_answered_spaced_and_capped() -> None:
    d = Dialer(datetime(2026, 6, 1, 8, 30, tzinfo=HST).astimezone(UTC))
    (first,) = d.new_lead("l1").calls
    d.answer(first, "placed")
    d.apply(CallEnded(SITE, "l1", None, "no-answer", first.attempt_id))
    assert d.lead("l1").status is LeadStatus.WAITING
    d.now += timedelta(hours=3, minutes=59)
    assert d.apply(Tick(SITE)).calls == ()
    d.now += timedelta(minutes=1)
    (second,) = d.apply(Tick(SITE)).calls
    d.answer(second, "placed")
    d.apply(CallEnded(SITE, "l1", None, "voicemail", second.attempt_id))
    d.now += timedelta(hours=4)
    assert d.apply(Tick(SITE)).calls == ()  # two today: the daily cap
    assert d.lead("l1").reason == "daily_attempt_limit"
    d.now = datetime(2026, 6, 2, 8, 0, tzinfo=HST).astimezone(UTC)
    (third,) = d.apply(Tick(SITE)).calls
    d.answer(third, "placed")
    d.apply(CallEnded(SITE, "l1", None, "busy", third.attempt_id))
    assert d.lead("l1").status is LeadStatus.DONE and d.lead("l1").reason == "max_attempts"


def test_an_outcome_naming_no_call_read_again_ends_no_later_attempt() -> None:
    # Found by the property test: a no-answer naming neither attempt nor conversation ended
    # the first (uncertain) call; read again after a restart it ended the redial in flight,
    # and the dialer called a third time while the second call's fate was unknown.
    d = Dialer(datetime(2026, 6, 1, 8, 30, tzinfo=HST).astimezone(UTC))
    (first,) = d.new_lead("l1").calls
    d.answer(first, "placed")
    d.apply(CallEnded(SITE, "l1", None, "no-answer", first.attempt_id))
    d.now += timedelta(hours=4)
    (second,) = d.apply(Tick(SITE)).calls
    anonymous = CallEnded(SITE, "l1", None, "no-answer", None)
    d.apply(anonymous)
    assert d.lead("l1").status is LeadStatus.CALLING
    d.now += timedelta(minutes=5)
    d.apply(Tick(SITE))  # nobody waits for the second request: uncertain, never re-sent
    d.apply(anonymous)
    d.now += timedelta(hours=5)
    d.apply(Tick(SITE))
    assert d.calls == [first, second]
    assert d.lead("l1").status is LeadStatus.UNCERTAIN


def test_never_a_redial_after_a_conversation_or_an_opt_out() -> None:
    d = Dialer()
    (call,) = d.new_lead("l1").calls
    d.answer(call, "placed")
    d.apply(CallEnded(SITE, "l1", None, "completed", call.attempt_id))
    assert d.lead("l1").status is LeadStatus.DONE
    (other,) = d.new_lead("l2", NEW_YORK).calls
    d.answer(other, "placed")
    d.apply(CallEnded(SITE, "l2", None, "completed", other.attempt_id, opted_out=True))
    assert d.lead("l2").status is LeadStatus.OPTED_OUT
    d.now += timedelta(days=2)
    assert d.apply(Tick(SITE)).calls == ()


def test_each_placed_call_is_an_activity_on_the_lead_with_a_fixed_id() -> None:
    d = Dialer()
    (call,) = d.new_lead("l1").calls
    result = d.answer(call, "placed")
    outbound = [e for e in result.emits if e.topic == "activities_outbound"]
    (activity,) = [e.value["activity"] for e in outbound]
    assert activity["type"] == "called"
    assert activity["description"] == f"AI call initiated to {HONOLULU}"
    again = d.answer(call, "placed")  # redelivered: the same records, the same ids
    assert [e.value for e in again.emits] == [e.value for e in result.emits]
    (conversation,) = [e for e in result.emits if e.topic == "conversations"]
    assert conversation.value["attempt_id"] == call.attempt_id



def test_an_uncertain_attempt_is_an_activity_on_the_lead_too() -> None:
    # It may have rung the person; if it turns out placed, the outbox posts only the first
    # activity of the attempt (one id per attempt), so the lead shows it once.
    d = Dialer()
    (call,) = d.new_lead("l1").calls
    result = d.answer(call, "unknown", cause="dropped", reason="connection dropped")
    (unknown,) = [e.value for e in result.emits if e.topic == "activities_outbound"]
    assert unknown["activity"]["type"] == "called"
    assert unknown["activity"]["description"] == (
        f"AI call attempted to {HONOLULU}; outcome unknown (dropped), not retried"
    )
    placed = d.answer(call, "placed")
    (initiated,) = [e.value for e in placed.emits if e.topic == "activities_outbound"]
    assert initiated["activity_id"] == unknown["activity_id"]

def test_a_switched_off_dialer_keeps_nobody_waiting() -> None:
    night = datetime(2026, 6, 1, 23, 0, tzinfo=HST).astimezone(UTC)
    d = Dialer(night)
    d.new_lead("l1")
    d.policy = DialerPolicy(enabled=False)
    d.apply(Tick(SITE))
    assert d.lead("l1").status is LeadStatus.SKIPPED and d.lead("l1").reason == "dialer_disabled"
    assert d.new_lead("l2").calls == () and d.lead("l2") is None
    d.policy = POLICY
    d.now = datetime(2026, 6, 2, 9, 0, tzinfo=HST).astimezone(UTC)
    assert d.apply(Tick(SITE)).calls == ()


def test_calls_wait_until_every_opt_out_was_read() -> None:
    d = Dialer()
    context = ContextSeen(SITE, "l1", ctx("l1", HONOLULU, NOON_HST))
    assert d.apply(context, dispatching=False).calls == ()
    assert d.lead("l1").status is LeadStatus.WAITING
    assert d.apply(Tick(SITE)).calls != ()


def test_a_context_saying_the_lead_opted_out_ends_its_calls_before_the_list_is_read() -> None:
    # The context builder read the opt-out (sync.optouts) before the dialer did: the lead
    # waiting for its call is opted out at once, and stays so when the entry comes.
    d = Dialer()
    d.apply(ContextSeen(SITE, "l1", ctx("l1", HONOLULU, NOON_HST)), dispatching=False)
    assert d.lead("l1").status is LeadStatus.WAITING
    d.new_lead("l1", eligible=False, reason="opted_out", trigger="updated")
    assert (d.lead("l1").status, d.lead("l1").reason) == (LeadStatus.OPTED_OUT, "opted_out")
    d.opt_out("phone", HONOLULU)
    d.new_lead("l1", trigger="updated")  # an eligible context later changes nothing
    assert d.apply(Tick(SITE)).calls == () and d.lead("l1").status is LeadStatus.OPTED_OUT
    assert d.calls == []


# -- operators: pause, resume, call now, never call; per-site hours and days ---------------


def operator(d: Dialer, action: str, lead_id: str | None = None) -> Step:
    return d.apply(OperatorAction(SITE, action, "ops@example.com", d.now.isoformat(), lead_id))  # type: ignore[arg-type]


def test_a_paused_site_dials_nothing_and_resume_calls_the_leads_that_waited() -> None:
    d = Dialer()
    operator(d, "pause")
    assert d.store.site(SITE).paused.startswith("ops@example.com at ")
    assert d.new_lead("l1").calls == () and d.apply(Tick(SITE)).calls == ()
    assert d.lead("l1").status is LeadStatus.WAITING
    d.now += timedelta(minutes=5)
    (call,) = operator(d, "resume").calls
    assert call.lead_id == "l1" and d.store.site(SITE).paused is None


def test_never_call_is_final_for_the_lead() -> None:
    night = datetime(2026, 6, 1, 23, 0, tzinfo=HST).astimezone(UTC)
    d = Dialer(night)
    d.new_lead("l1")
    operator(d, "never_call", "l1")
    record = d.lead("l1")
    assert record.never_call and record.status is LeadStatus.SKIPPED
    d.now = NOON_HST + timedelta(days=1)
    assert d.apply(Tick(SITE)).calls == () and operator(d, "call_now", "l1").calls == ()
    assert d.new_lead("l1").calls == () and d.calls == []
    # An unknown lead can be marked before the dialer ever sees it.
    operator(d, "never_call", "l2")
    assert d.new_lead("l2").calls == ()


def test_call_now_calls_an_old_lead_but_only_inside_its_window_and_caps() -> None:
    d = Dialer()
    # A backfilled lead is never called on its own...
    assert d.new_lead("l1", trigger="backfill").calls == ()
    assert d.lead("l1").reason == "backfill"
    # ...but an operator may ask: outside the window it waits for the window.
    d.now = datetime(2026, 6, 1, 22, 0, tzinfo=HST).astimezone(UTC)
    assert operator(d, "call_now", "l1").calls == ()
    record = d.lead("l1")
    assert record.status is LeadStatus.WAITING and record.reason == "outside_calling_hours"
    d.now = datetime(2026, 6, 2, 8, 5, tzinfo=HST).astimezone(UTC)
    (call,) = d.apply(Tick(SITE)).calls
    # A call in progress: call now again is refused (never two at once).
    result = operator(d, "call_now", "l1")
    assert result.calls == () and ("operator", "call_now_refused_call_in_progress") in result.counts
    d.answer(call)
    d.apply(CallEnded(SITE, "l1", "conv-" + call.attempt_id, "no-answer", call.attempt_id))
    # The redial spacing holds for an operator too.
    assert operator(d, "call_now", "l1").calls == ()
    assert d.lead("l1").reason == "redial_wait"


def test_call_now_never_reaches_an_opted_out_lead() -> None:
    d = Dialer()
    d.new_lead("l1", trigger="backfill")
    d.opt_out("phone", HONOLULU)
    result = operator(d, "call_now", "l1")
    assert result.calls == () and ("operator", "call_now_refused_do_not_call") in result.counts
    assert ("operator", "call_now_refused_unknown_lead") in operator(d, "call_now", "nobody").counts


def test_a_site_calls_only_on_its_days_and_hours() -> None:
    # Monday 2026-06-01; the site calls Tuesday to Saturday, 10:00-17:00.
    policy = DialerPolicy(
        days=frozenset({1, 2, 3, 4, 5}), window_start=time(10), window_end=time(17)
    )
    d = Dialer(NOON_HST, policy)
    assert d.new_lead("l1").calls == ()
    record = d.lead("l1")
    assert datetime.fromtimestamp(record.due, HST) == datetime(2026, 6, 2, 10, 0, tzinfo=HST)
    d.now = datetime(2026, 6, 2, 10, 1, tzinfo=HST).astimezone(UTC)
    assert len(d.apply(Tick(SITE)).calls) == 1


# -- operators: pause and resume every site (a switch per partition, for any site) ----------


def everywhere(d: Dialer, action: str, partition: int = 0) -> Step:
    """The agent's form of a pause or resume of every site read on ``partition``."""
    scope = all_sites_key(partition)
    return d.apply(OperatorAction(scope, action, "ops@example.com", d.now.isoformat()))  # type: ignore[arg-type]


def lead_of(d: Dialer, site: str, lead_id: str) -> Step:
    return d.apply(ContextSeen(site, lead_id, ctx(lead_id, HONOLULU, d.now)))


def test_a_site_first_seen_after_a_pause_of_every_site_waits_until_every_site_resumes() -> None:
    d = Dialer()
    result = everywhere(d, "pause")
    assert result.calls == () and ("operator", "pause_all") in result.counts
    assert d.store.all_sites("site-new").paused.startswith("ops@example.com at ")
    assert d.store.site("site-new") is None  # nothing about the site itself was written
    # A site the dialer has never seen: its first lead waits, whatever asks for a call.
    assert lead_of(d, "site-new", "l1").calls == ()
    assert d.store.lead("site-new", "l1").status is LeadStatus.WAITING
    assert d.apply(Tick("site-new")).calls == ()
    op = OperatorAction("site-new", "call_now", "ops", d.now.isoformat(), "l1")
    assert d.apply(op).calls == ()
    # The pause of every site wins over the site's own resume.
    assert d.apply(OperatorAction("site-new", "resume", "ops", d.now.isoformat())).calls == ()
    d.now += timedelta(minutes=5)
    assert d.apply(Tick("site-new")).calls == ()
    assert d.calls == []
    # Resuming every site dials on the site's next tick (the timer's, in the worker).
    result = everywhere(d, "resume")
    assert result.calls == () and ("operator", "resume_all") in result.counts
    assert d.store.all_sites("site-new").paused is None
    (call,) = d.apply(Tick("site-new")).calls
    assert (call.site_uuid, call.lead_id) == ("site-new", "l1")


def test_a_site_paused_alone_stays_paused_when_every_site_resumes() -> None:
    d = Dialer()
    operator(d, "pause")
    everywhere(d, "pause")
    everywhere(d, "resume")
    assert d.new_lead("l1").calls == () and d.apply(Tick(SITE)).calls == ()
    (call,) = operator(d, "resume").calls
    assert call.lead_id == "l1"


def test_each_partition_keeps_its_own_switch_for_every_site() -> None:
    d = Dialer()
    d.store = DialerStore(*d.tables, partition_of=lambda site: 0 if site == "site-a" else 1)
    everywhere(d, "pause", partition=0)
    assert lead_of(d, "site-a", "a1").calls == ()
    # Partition 1 has not read its copy of the record yet: its sites still dial.
    assert len(lead_of(d, "site-b", "b1").calls) == 1
    everywhere(d, "pause", partition=1)
    assert lead_of(d, "site-b", "b2").calls == ()
    assert set(d.tables[1]) >= {"*:0", "*:1"}
    everywhere(d, "resume", partition=0)
    assert [c.lead_id for c in d.apply(Tick("site-a")).calls] == ["a1"]
    assert d.apply(Tick("site-b")).calls == ()


def test_the_switch_for_every_site_takes_only_a_pause_or_a_resume() -> None:
    d = Dialer()
    scope = all_sites_key(0)
    d.apply(ContextSeen(scope, "l1", ctx("l1", HONOLULU, d.now)))
    d.apply(OperatorAction(scope, "call_now", "ops", d.now.isoformat(), "l1"))
    assert d.apply(Tick(scope)).calls == () and d.tables == ({}, {}, {})
    # On the topic, "*" names every site for a pause or a resume, and nothing else.
    base = {"kind": "operator", "by": "ops", "at": d.now.isoformat()}
    parsed = parse_dialer_record({**base, "site_uuid": "*", "action": "pause"})
    assert isinstance(parsed, OperatorAction) and parsed.site_uuid == "*"
    for bad in (
        {**base, "site_uuid": "*", "action": "never_call", "lead_id": "l1"},
        {**base, "site_uuid": "*:0", "action": "pause"},
        {"kind": "tick", "site_uuid": "*"},
        {"kind": "outcome", "site_uuid": "*", "lead_id": "l1", "outcome": "completed"},
    ):
        with pytest.raises(DialerRecordError):
            parse_dialer_record(bad)


def test_a_damaged_switch_for_every_site_holds_calls_until_a_resume_mends_it() -> None:
    d = Dialer()
    d.tables[1][all_sites_key(0)] = {"paused": "who"}  # no site_uuid: unreadable
    assert d.new_lead("l1").calls == () and d.apply(Tick(SITE)).calls == ()
    everywhere(d, "resume")
    assert len(d.apply(Tick(SITE)).calls) == 1
