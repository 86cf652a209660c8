"""What an outbound-call request's answer proves: a call was placed, none was, or unknown.

Only an answer that proves no call was made may lead to another request: a 4xx refusal
(ElevenLabs validated and rejected it), a 429 or 408 (refused before any call), or a
connection that failed before the request was written, or a request never sent because
its calling window closed while its attempt was being stored. Everything else (a timeout, a
dropped connection, a 5xx, ``success: false``, a 2xx without a conversation id) leaves
the attempt ``unknown``: the call may exist, so it is never sent again automatically.
"""

from __future__ import annotations

from typing import Literal

from realgeeks_sync.app.core.errors import ApiError
from realgeeks_sync.app.domain.dialing.events import WINDOW_CLOSED, CallAnswer

__all__ = ["answer_for_error", "answer_for_placement", "answer_for_window_closed"]

_REFUSED_LATER = frozenset({408, 425, 429})


def answer_for_placement(
    site_uuid: str, lead_id: str, attempt_id: str, conversation_id: str
) -> CallAnswer:
    """The answer for a request ElevenLabs accepted with a conversation id."""
    return CallAnswer(
        site_uuid,
        lead_id,
        attempt_id,
        "placed",
        cause="placed",
        conversation_id=conversation_id,
    )


def answer_for_window_closed(site_uuid: str, lead_id: str, attempt_id: str) -> CallAnswer:
    """The answer for a request not sent because its ``not_after`` had passed: no call was
    made, and the lead may be called in its next window (as a new attempt)."""
    return CallAnswer(
        site_uuid,
        lead_id,
        attempt_id,
        "refused",
        cause=WINDOW_CLOSED,
        retriable=True,
        reason="not sent: the calling window closed before the request could leave",
    )


def answer_for_error(site_uuid: str, lead_id: str, attempt_id: str, error: ApiError) -> CallAnswer:
    """Classify a failed request (app/clients/http.py and the ElevenLabs client's errors)."""
    status = error.http_status
    reason = str(error)[:300]

    def answer(
        result: Literal["refused", "unknown"], cause: str, *, retriable: bool = False
    ) -> CallAnswer:
        return CallAnswer(
            site_uuid,
            lead_id,
            attempt_id,
            result,
            cause=cause,
            retriable=retriable,
            retry_after=error.retry_after,
            reason=reason,
        )

    if status is None:
        if error.cause == "not_connected":
            return answer("refused", "not_connected", retriable=True)
        return answer("unknown", "timeout" if error.cause == "timeout" else "dropped")
    if status in _REFUSED_LATER:
        return answer("refused", "rate_limited", retriable=True)
    if 400 <= status <= 499:
        return answer("refused", "rejected")
    if 500 <= status <= 599:
        return answer("unknown", "server_error")
    # A 2xx the client could not accept: success false, no conversation id, not JSON.
    return answer("unknown", "not_placed")
