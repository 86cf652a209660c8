"""Token buckets keyed by a string (client address, site uuid) with bounded memory."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["KeyedRateLimiter"]


@dataclass(slots=True)
class _Bucket:
    """Tokens left (negative while callers of ``acquire`` are queued) as of ``updated``."""

    tokens: float
    updated: float


class KeyedRateLimiter:
    """One token bucket per key: ``burst`` tokens, refilled at ``rate_per_s``.

    A key whose bucket has refilled completely carries no state worth keeping, so such
    buckets are dropped; past ``max_keys`` the least recently used bucket goes too.
    Not thread-safe: use it from one event loop.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """Create an empty limiter.

        Raises:
            ValueError: rate_per_s <= 0, burst < 1 or max_keys < 1.
        """
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._sleep = sleep
        # Least recently used first: eviction pops from the front.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """Return how many keys currently hold state."""
        return len(self._buckets)

    def try_acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = self._clock()
        bucket = self._refilled(key, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s

    async def acquire(self, key: str) -> None:
        """Wait until ``key`` may proceed; concurrent waiters on one key go in arrival order."""
        now = self._clock()
        bucket = self._refilled(key, now)
        # Reserve the token now (the balance may go negative) so later callers queue
        # behind this one instead of racing it when they all wake up.
        bucket.tokens -= 1.0
        if bucket.tokens < 0.0:
            await self._sleep(-bucket.tokens / self.rate_per_s)

    def _refilled(self, key: str, now: float) -> _Bucket:
        """Return ``key``'s bucket topped up to ``now``, marked most recently used."""
        self._evict_idle(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self.burst, updated=now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return bucket
        self._buckets.move_to_end(key)
        # max(): a clock that steps backwards must not drain the bucket.
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate_per_s)
        bucket.updated = max(now, bucket.updated)
        return bucket

    def _evict_idle(self, now: float) -> None:
        """Drop least recently used buckets that would be full by now (amortised O(1))."""
        while self._buckets:
            key, bucket = next(iter(self._buckets.items()))
            full_at = bucket.updated + (self.burst - bucket.tokens) / self.rate_per_s
            if full_at > now:
                return
            del self._buckets[key]
