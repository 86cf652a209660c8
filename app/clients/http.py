"""One HTTP exchange with an outside API, its failures translated where they happen.

Both API clients send through here, so timeouts, connection errors, redirects and the
duration report behave the same for Real Geeks and ElevenLabs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from realgeeks_sync.app.clients.retry import is_transient_status, parse_retry_after
from realgeeks_sync.app.core.errors import ApiError, PermanentApiError, TransientApiError

__all__ = ["RawAnswer", "error_for", "exchange"]


@dataclass(frozen=True)
class RawAnswer:
    """What came back: the status, the body as text and the Retry-After header."""

    status: int
    text: str
    retry_after: str | None


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    api: str,
    operation: str,
    data: bytes | None,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    report: Callable[[str, str, float], None],
) -> RawAnswer:
    """Send one request; ``report(operation, outcome, seconds)`` is called whatever happens.

    Raises:
        TransientApiError: timeout or connection failure (no answer to judge); ``cause``
            says whether the request can have left ("not_connected" means it did not).
    """
    started = time.perf_counter()
    outcome = "network"
    try:
        async with session.request(
            method,
            url,
            data=data,
            headers=headers,
            timeout=timeout,
            # A redirect means a misconfigured base URL; following it could replay a
            # non-idempotent POST or carry credentials elsewhere.
            allow_redirects=False,
        ) as response:
            text = await response.text(encoding="utf-8", errors="replace")
            outcome = str(response.status)
            retry_after = response.headers.get("Retry-After")
    except aiohttp.ConnectionTimeoutError as exc:
        # Before the generic timeout: the connection was never made, nothing was sent.
        outcome = "timeout"
        raise TransientApiError(
            f"{api} {operation}: connection timed out", cause="not_connected"
        ) from exc
    except TimeoutError as exc:
        # aiohttp raises TimeoutError subclasses (also ClientErrors) for ClientTimeout.
        outcome = "timeout"
        raise TransientApiError(f"{api} {operation}: timed out", cause="timeout") from exc
    except aiohttp.ClientConnectorError as exc:
        raise TransientApiError(
            f"{api} {operation}: {type(exc).__name__}", cause="not_connected"
        ) from exc
    except aiohttp.ClientError as exc:
        # After the connection was made: the request may have been processed.
        raise TransientApiError(
            f"{api} {operation}: {type(exc).__name__}", cause="dropped"
        ) from exc
    finally:
        report(operation, outcome, time.perf_counter() - started)
    return RawAnswer(int(outcome), text, retry_after)


def error_for(api: str, operation: str, answer: RawAnswer, reason: str, body: str) -> ApiError:
    """The error a non-2xx answer means: transient (5xx, 429, 408) with its Retry-After,
    else permanent (retrying cannot help)."""
    message = f"{api} {operation}: HTTP {answer.status}: {reason}"
    if is_transient_status(answer.status):
        return TransientApiError(
            message,
            status=answer.status,
            body=body,
            retry_after=parse_retry_after(answer.retry_after),
        )
    return PermanentApiError(message, status=answer.status, body=body)
