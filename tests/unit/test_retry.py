"""Retry policy, full jitter and the retry loop, on a fake clock: no real sleeping."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.clients.retry import (
    RetryPolicy,
    attempts_of,
    call_with_retries,
    full_jitter_delay,
    is_transient_status,
    parse_retry_after,
)
from realgeeks_sync.app.core.errors import PermanentApiError, PublishError, TransientApiError


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """An async callable that raises the scripted errors in order, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


POLICY = RetryPolicy(base_delay=1.0, max_delay=8.0, max_attempts=5, max_elapsed=60.0)


def transient(retry_after: float | None = None) -> TransientApiError:
    return TransientApiError("boom", status=503, retry_after=retry_after)


@given(
    base=st.floats(0.0, 10.0),
    extra=st.floats(0.0, 100.0),
    attempt=st.integers(-5, 10_000),
    seed=st.integers(0, 2**32),
)
def test_full_jitter_stays_within_the_exponential_ceiling(
    base: float, extra: float, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=base + extra)
    delay = full_jitter_delay(policy, attempt, random.Random(seed))
    ceiling = min(policy.max_delay, base * 2.0 ** min(max(attempt, 0), 64))
    assert 0.0 <= delay <= ceiling


def test_full_jitter_grows_then_caps() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(7)
    samples = {a: [full_jitter_delay(policy, a, rng) for _ in range(2000)] for a in (0, 2, 10)}
    assert max(samples[0]) <= 1.0
    assert max(samples[2]) > 2.0  # reaches past the previous ceiling: it grows
    assert max(samples[10]) <= 8.0
    assert max(samples[10]) > 7.0  # ...until the cap, spread over the whole range
    assert min(samples[10]) < 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_delay": -1.0},
        {"base_delay": 2.0, "max_delay": 1.0},
        {"max_attempts": 0},
        {"max_elapsed": 0.0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


async def test_transient_errors_are_retried_until_success() -> None:
    fake = FakeTime()
    fn = Script(transient(), transient(), transient())
    seen: list[tuple[int, float]] = []

    result = await call_with_retries(
        fn,
        POLICY,
        sleep=fake.sleep,
        clock=fake.clock,
        rng=random.Random(1),
        on_retry=lambda err, attempt, delay: seen.append((attempt, delay)),
    )

    assert result == "ok"
    assert fn.calls == 4
    assert [a for a, _ in seen] == [1, 2, 3]
    assert [d for _, d in seen] == fake.sleeps
    # full jitter per attempt: each delay under its own doubling ceiling
    assert all(d <= 2.0**i for i, d in enumerate(fake.sleeps))


async def test_permanent_error_raises_at_once() -> None:
    fake = FakeTime()
    fn = Script(PermanentApiError("no", status=422))
    with pytest.raises(PermanentApiError) as caught:
        await call_with_retries(fn, POLICY, sleep=fake.sleep, clock=fake.clock)
    assert fn.calls == 1
    assert fake.sleeps == []
    assert attempts_of(caught.value) == 1


async def test_other_exceptions_are_not_retried() -> None:
    fake = FakeTime()
    fn = Script(KeyError("bug"))
    with pytest.raises(KeyError):
        await call_with_retries(fn, POLICY, sleep=fake.sleep, clock=fake.clock)
    assert fn.calls == 1


async def test_any_retriable_service_error_is_retried() -> None:
    fake = FakeTime()
    fn = Script(PublishError("kafka slow"))
    assert await call_with_retries(fn, POLICY, sleep=fake.sleep, clock=fake.clock) == "ok"
    assert fn.calls == 2


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    fake = FakeTime()
    errors = [transient() for _ in range(10)]
    fn = Script(*errors)
    with pytest.raises(TransientApiError) as caught:
        await call_with_retries(fn, POLICY, sleep=fake.sleep, clock=fake.clock)
    assert fn.calls == POLICY.max_attempts
    assert caught.value is errors[POLICY.max_attempts - 1]
    assert attempts_of(caught.value) == POLICY.max_attempts
    assert len(fake.sleeps) == POLICY.max_attempts - 1
    assert any("max_attempts" in note for note in caught.value.__notes__)


async def test_retry_after_is_a_floor_on_the_delay() -> None:
    fake = FakeTime()
    fn = Script(transient(retry_after=5.0), transient(retry_after=0.0))
    await call_with_retries(fn, POLICY, sleep=fake.sleep, clock=fake.clock, rng=random.Random(3))
    assert fake.sleeps[0] >= 5.0
    assert fake.sleeps[1] <= 2.0  # a zero Retry-After falls back to jittered backoff


async def test_retry_after_beyond_the_budget_gives_up_without_sleeping() -> None:
    fake = FakeTime()
    fn = Script(transient(retry_after=61.0))
    with pytest.raises(TransientApiError) as caught:
        await call_with_retries(fn, POLICY, sleep=fake.sleep, clock=fake.clock)
    assert fn.calls == 1
    assert fake.sleeps == []
    assert attempts_of(caught.value) == 1


async def test_max_elapsed_bounds_total_time() -> None:
    fake = FakeTime()
    policy = RetryPolicy(base_delay=10.0, max_delay=10.0, max_attempts=100, max_elapsed=25.0)
    fn = Script(*[transient(retry_after=10.0) for _ in range(100)])

    with pytest.raises(TransientApiError) as caught:
        await call_with_retries(fn, policy, sleep=fake.sleep, clock=fake.clock)

    assert sum(fake.sleeps) <= 25.0
    assert fn.calls == 3  # at t=0, 10 and 20; at t=20 only 5 s are left for a 10 s wait
    assert attempts_of(caught.value) == 3


async def test_slow_calls_count_against_max_elapsed() -> None:
    fake = FakeTime()
    policy = RetryPolicy(base_delay=0.0, max_delay=0.0, max_attempts=100, max_elapsed=10.0)

    async def slow_failure() -> None:
        fake.now += 4.0  # each attempt times out after 4 s
        raise transient()

    with pytest.raises(TransientApiError) as caught:
        await call_with_retries(slow_failure, policy, sleep=fake.sleep, clock=fake.clock)
    assert attempts_of(caught.value) == 3


async def test_last_jittered_sleep_is_clamped_to_the_budget() -> None:
    fake = FakeTime()
    policy = RetryPolicy(base_delay=100.0, max_delay=100.0, max_attempts=3, max_elapsed=5.0)
    fn = Script(transient())
    assert await call_with_retries(fn, policy, sleep=fake.sleep, clock=fake.clock) == "ok"
    assert fake.sleeps and fake.sleeps[0] <= 5.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, True),
        (408, True),
        (500, True),
        (503, True),
        (599, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (200, False),
    ],
)
def test_transient_statuses(status: int, expected: bool) -> None:
    assert is_transient_status(status) is expected


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    for junk in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(junk, now=now) is None
