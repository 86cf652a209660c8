"""Keyed token buckets on a fake clock: floods are limited per key, memory stays bounded."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.core.rate_limit import KeyedRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_then_limited_with_an_exact_wait() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.try_acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("a") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.try_acquire("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.try_acquire("a") == 0.0


def test_a_flooding_key_does_not_slow_another() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=1.0, burst=5, clock=clock)
    flood = [limiter.try_acquire("10.0.0.66") for _ in range(100)]
    assert flood.count(0.0) == 5
    assert all(wait > 0 for wait in flood[5:])
    assert [limiter.try_acquire("10.0.0.7") for _ in range(5)] == [0.0] * 5


def test_refill_never_exceeds_burst() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=10.0, burst=2, clock=clock)
    limiter.try_acquire("a")
    clock.now += 3600
    assert [limiter.try_acquire("a") for _ in range(3)][-1] > 0


def test_clock_going_backwards_does_not_grant_or_drain() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=1.0, burst=1, clock=clock)
    assert limiter.try_acquire("a") == 0.0
    clock.now -= 100
    assert limiter.try_acquire("a") > 0


def test_idle_buckets_are_evicted() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=1.0, burst=2, clock=clock)
    for i in range(50):
        limiter.try_acquire(f"client-{i}")
    assert len(limiter) == 50
    clock.now += 2.0  # every bucket is full again: nothing worth remembering
    limiter.try_acquire("fresh")
    assert len(limiter) == 1


def test_busy_buckets_survive_eviction_of_idle_ones() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=1.0, burst=10, clock=clock)
    limiter.try_acquire("idle")
    for _ in range(10):
        limiter.try_acquire("flood")
    clock.now += 1.0  # "idle" is full again, "flood" has 1 of 10 tokens
    limiter.try_acquire("other")
    assert len(limiter) == 2  # "idle" gone; "flood" and "other" kept
    assert limiter.try_acquire("flood") == 0.0
    assert limiter.try_acquire("flood") > 0


def test_max_keys_evicts_least_recently_used() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=0.001, burst=1, clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.try_acquire(key)
    limiter.try_acquire("a")  # refused, but "a" becomes most recently used
    limiter.try_acquire("d")  # over max_keys: "b" (least recently used) goes
    assert len(limiter) == 3
    assert limiter.try_acquire("a") > 0  # still remembered, still limited
    assert limiter.try_acquire("b") == 0.0  # forgotten, so a fresh bucket


async def test_acquire_waits_for_a_token_in_arrival_order() -> None:
    clock = FakeClock()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)  # the clock stands still: all three wait at once
        await asyncio.sleep(0)

    limiter = KeyedRateLimiter(rate_per_s=4.0, burst=1, clock=clock, sleep=sleep)
    await limiter.acquire("site")
    assert sleeps == []
    # Three concurrent waiters reserve consecutive slots: 0.25, 0.5, 0.75 s from now.
    await asyncio.gather(*(limiter.acquire("site") for _ in range(3)))
    assert sleeps == pytest.approx([0.25, 0.5, 0.75])
    assert limiter.try_acquire("site") == pytest.approx(1.0)  # and later callers queue behind
    await limiter.acquire("other-site")
    assert len(sleeps) == 3


async def test_acquire_with_a_moving_clock_paces_at_the_rate() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=2.0, burst=2, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(10):
        await limiter.acquire("site")
    assert clock.now - start == pytest.approx(4.0)  # 2 from the burst, 8 at 2 per second


@pytest.mark.parametrize(
    ("rate", "burst", "max_keys"), [(0.0, 1.0, 10), (1.0, 0.5, 10), (1.0, 1.0, 0)]
)
def test_rejects_nonsense(rate: float, burst: float, max_keys: int) -> None:
    with pytest.raises(ValueError):
        KeyedRateLimiter(rate, burst, max_keys=max_keys)


@given(
    rate=st.floats(0.5, 50.0),
    burst=st.integers(1, 20),
    steps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=200),
)
def test_grants_never_exceed_burst_plus_refill(rate: float, burst: int, steps: list[float]) -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(rate_per_s=rate, burst=burst, clock=clock)
    start = clock.now
    granted = 0
    for step in steps:
        clock.now += step
        if limiter.try_acquire("k") == 0.0:
            granted += 1
    assert granted <= burst + (clock.now - start) * rate + 1e-9
