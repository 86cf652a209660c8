"""Whether to call a lead now, later or never (pure: the clock is passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.calling_window import InvalidPhoneNumberError, local_call_window

__all__ = ["CallPlan", "plan_call"]


@dataclass(frozen=True)
class CallPlan:
    """``call`` now, ``wait`` until ``due`` (the window opens), or ``skip`` for ``reason``."""

    action: str
    reason: str
    due: datetime | None = None
    attempts_key: str | None = None


def plan_call(
    context: Mapping[str, Any],
    *,
    do_not_call: bool,
    state: Mapping[str, Any] | None,
    now: datetime,
    max_attempts_per_day: int,
    fallback_zone: str = "America/New_York",
) -> CallPlan:
    """Decide what the dialer does with one calls.context record.

    Order matters: opt-outs and ineligibility first (never call), then leads already
    called (one AI call per lead, replays included), then the local calling window, then
    the daily attempt limit.
    """
    if do_not_call:
        return CallPlan("skip", "do_not_call")
    if not context.get("eligible"):
        return CallPlan("skip", str(context.get("reason") or "ineligible"))
    state = state or {}
    if state.get("conversation_id") or state.get("status") in ("called", "uncertain"):
        return CallPlan("skip", "already_called")
    lead = context.get("lead")
    phone = lead.get("phone") if isinstance(lead, Mapping) else None
    if not isinstance(phone, str) or not phone:
        return CallPlan("skip", "no_valid_phone")
    try:
        window = local_call_window(phone, now, fallback_zone=fallback_zone)
    except InvalidPhoneNumberError:
        return CallPlan("skip", "no_valid_phone")
    if not window.allowed_now:
        if window.next_open_utc is None:
            return CallPlan("skip", "no_calling_window")
        return CallPlan("wait", "outside_calling_hours", due=window.next_open_utc)
    key = f"{window.local_date.isoformat()}"
    attempts = state.get("attempts_by_day", {}).get(key, 0) if isinstance(state, Mapping) else 0
    if attempts >= max_attempts_per_day:
        return CallPlan("skip", "daily_attempt_limit")
    return CallPlan("call", "eligible", attempts_key=key)
