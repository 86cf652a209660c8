"""Retries as data: a backoff policy, full-jitter delays and one retry loop for API calls."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from realgeeks_sync.app.core.errors import RealGeeksSyncError

__all__ = [
    "OnRetry",
    "RetryPolicy",
    "attempts_of",
    "call_with_retries",
    "full_jitter_delay",
    "is_transient_status",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

OnRetry = Callable[[RealGeeksSyncError, int, float], None]
"""Called before each backoff sleep with (error, attempts made so far, delay in seconds)."""

# 2**64 * any sane base delay already dwarfs every cap; clamping keeps the float finite.
_MAX_EXPONENT = 64

_DEFAULT_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: exponential backoff with full jitter, two budgets."""

    base_delay: float = 0.5
    max_delay: float = 30.0
    max_attempts: int = 8
    max_elapsed: float = 300.0

    def __post_init__(self) -> None:
        """Reject schedules that could never make a sensible attempt.

        Raises:
            ValueError: a delay is negative, max_delay < base_delay, or a budget is not positive.
        """
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")
        if self.max_delay < self.base_delay:
            raise ValueError("max_delay must be >= base_delay")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.max_elapsed <= 0:
            raise ValueError("max_elapsed must be > 0")


def full_jitter_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Return AWS "full jitter" backoff: uniform(0, min(max_delay, base_delay * 2**attempt)).

    ``attempt`` counts retries from 0 (the delay before the second call uses 0).
    """
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    ceiling = min(policy.max_delay, policy.base_delay * 2.0**exponent)
    return rng.uniform(0.0, ceiling)


def attempts_of(err: BaseException) -> int:
    """Return how many calls ``call_with_retries`` made before raising ``err`` (1 if unknown)."""
    attempts = getattr(err, "attempts", 1)
    return attempts if isinstance(attempts, int) else 1


def _give_up(err: RealGeeksSyncError, attempts: int, elapsed: float, why: str) -> None:
    # errors.py's classes do not declare ``attempts``; a plain attribute keeps the tree unchanged
    # while agents and dead letters can still read it (see ``attempts_of``).
    setattr(err, "attempts", attempts)  # noqa: B010
    err.add_note(f"gave up after {attempts} attempt(s) in {elapsed:.2f}s: {why}")


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random = _DEFAULT_RNG,
    on_retry: OnRetry | None = None,
) -> T:
    """Await ``fn()`` until it succeeds, retrying only ``retriable`` service errors.

    The delay before a retry is full jitter, but never shorter than the error's
    ``retry_after``; no sleep reaches past ``policy.max_elapsed`` from the first call.
    The raised error carries ``attempts`` (read it with ``attempts_of``).

    Raises:
        RealGeeksSyncError: a non-retriable error at once, or the last retriable one once
            ``max_attempts`` or ``max_elapsed`` is spent, or when its Retry-After exceeds
            what is left of ``max_elapsed``.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except RealGeeksSyncError as err:
            elapsed = clock() - started
            if not err.retriable:
                _give_up(err, attempt, elapsed, "not retriable")
                raise
            if attempt >= policy.max_attempts:
                _give_up(err, attempt, elapsed, "max_attempts reached")
                raise
            remaining = policy.max_elapsed - elapsed
            if remaining <= 0:
                _give_up(err, attempt, elapsed, "max_elapsed reached")
                raise
            retry_after = getattr(err, "retry_after", None)
            delay = full_jitter_delay(policy, attempt - 1, rng)
            if retry_after is not None:
                if retry_after > remaining:
                    _give_up(err, attempt, elapsed, f"Retry-After {retry_after:g}s exceeds budget")
                    raise
                delay = max(delay, float(retry_after))
            # A last try at the end of the budget beats giving up while time is left.
            delay = min(delay, remaining)
            log.debug(
                "retrying after %s",
                err.error_type,
                extra={"attempt": attempt, "delay_s": round(delay, 3)},
            )
            if on_retry is not None:
                on_retry(err, attempt, delay)
            await sleep(delay)


_TRANSIENT_4XX = frozenset({408, 425, 429})


def is_transient_status(status: int) -> bool:
    """Return True for HTTP statuses worth retrying: 408, 425, 429 and every 5xx."""
    return status in _TRANSIENT_4XX or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header (delta seconds or HTTP-date) into seconds from ``now``.

    Returns None when the header is absent or unreadable; a date in the past gives 0.0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 HTTP-dates are always GMT; a naive result means "-0000".
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max((when - reference).total_seconds(), 0.0)
