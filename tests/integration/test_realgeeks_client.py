"""RealGeeksClient against the fake Real Geeks API over real HTTP on 127.0.0.1 (no Kafka)."""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from ops.testkit.fakes.realgeeks import DEFAULT_USERS, FakeRealGeeks
from realgeeks_sync.app.clients.realgeeks import RealGeeksClient
from realgeeks_sync.app.clients.retry import RetryPolicy, attempts_of, call_with_retries
from realgeeks_sync.app.core.errors import PermanentApiError, TransientApiError

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
LEAD = "a27c20af4497415d9e4e7334dd1d40d2"
ACTIVITY = {
    "type": "note",
    "source": "AI Caller",
    "description": "AI call completed: lead wants a viewing",
    "created": "2025-01-01T12:00:00.123456789Z",
}
POLICY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=5, max_elapsed=30.0)


class Recorder:
    """Collects on_request reports and fake sleeps (a fake clock that sleeps advances)."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, str, float]] = []
        self.sleeps: list[float] = []
        self.now = 0.0

    def on_request(self, operation: str, status: str, seconds: float) -> None:
        self.reports.append((operation, status, seconds))

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealGeeks]:
    async with FakeRealGeeks(user="mywebsite", password="s3cret") as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(
    fake: FakeRealGeeks, session: aiohttp.ClientSession, recorder: Recorder
) -> RealGeeksClient:
    return RealGeeksClient(
        session, fake.url, "mywebsite", "s3cret", timeout_s=2.0, on_request=recorder.on_request
    )


async def post_with_retries(client: RealGeeksClient, recorder: Recorder, **kw: Any) -> None:
    await call_with_retries(
        lambda: client.post_activities(SITE, LEAD, [ACTIVITY]),
        kw.get("policy", POLICY),
        sleep=recorder.sleep,
        clock=recorder.clock,
        rng=random.Random(0),
    )


async def test_post_activities_sends_the_documented_request(
    fake: FakeRealGeeks, client: RealGeeksClient, recorder: Recorder
) -> None:
    await client.post_activities(SITE, LEAD, [ACTIVITY])

    assert fake.activities[(SITE, LEAD)] == [ACTIVITY]
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.path == f"/rest/sites/{SITE}/leads/{LEAD}/activities"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    # The documented example: mywebsite:s3cret
    assert request.headers["Authorization"] == "Basic bXl3ZWJzaXRlOnMzY3JldA=="
    assert request.json() == [ACTIVITY]
    assert [(op, status) for op, status, _ in recorder.reports] == [("post_activities", "200")]


async def test_empty_activity_list_sends_nothing(
    fake: FakeRealGeeks, client: RealGeeksClient
) -> None:
    await client.post_activities(SITE, LEAD, [])
    assert fake.requests == []


async def test_ids_cannot_escape_their_path_segment(
    fake: FakeRealGeeks, client: RealGeeksClient
) -> None:
    await client.post_activities(SITE, "../../users", [ACTIVITY])
    # Quoted as one segment, the id still names a lead on the activities route.
    assert fake.activities[(SITE, "../../users")] == [ACTIVITY]
    assert fake.requests_to("/users", method="GET") == []


async def test_429_with_retry_after_is_retried_and_honoured(
    fake: FakeRealGeeks, client: RealGeeksClient, recorder: Recorder
) -> None:
    fake.fail_next(status=429, retry_after=2)

    await post_with_retries(client, recorder)

    assert [r.status for r in fake.requests] == [429, 200]
    assert recorder.sleeps[0] >= 2.0
    assert fake.activities[(SITE, LEAD)] == [ACTIVITY]  # exactly one, despite the retry
    assert [status for _, status, _ in recorder.reports] == ["429", "200"]


async def test_retry_after_http_date_is_parsed(
    fake: FakeRealGeeks, client: RealGeeksClient
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    fake.fail_next(status=503, retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(TransientApiError) as caught:
        await client.post_activities(SITE, LEAD, [ACTIVITY])
    assert caught.value.retry_after is not None
    assert 85 <= caught.value.retry_after <= 90


async def test_retry_after_beyond_budget_gives_up(
    fake: FakeRealGeeks, client: RealGeeksClient, recorder: Recorder
) -> None:
    fake.fail_next(status=429, retry_after=3600)
    with pytest.raises(TransientApiError) as caught:
        await post_with_retries(client, recorder)
    assert caught.value.http_status == 429
    assert recorder.sleeps == []
    assert len(fake.requests) == 1


async def test_a_burst_of_500s_is_retried_to_exactly_one_activity(
    fake: FakeRealGeeks, client: RealGeeksClient, recorder: Recorder
) -> None:
    fake.fail_next(status=500, times=3)

    await post_with_retries(client, recorder)

    assert [r.status for r in fake.requests] == [500, 500, 500, 200]
    assert len(recorder.sleeps) == 3
    assert fake.activities[(SITE, LEAD)] == [ACTIVITY]


async def test_persistent_500s_exhaust_attempts(
    fake: FakeRealGeeks, client: RealGeeksClient, recorder: Recorder
) -> None:
    fake.fail_next(status=500, times=100, error="Internal error")
    with pytest.raises(TransientApiError) as caught:
        await post_with_retries(client, recorder)
    assert attempts_of(caught.value) == POLICY.max_attempts
    assert len(fake.requests) == POLICY.max_attempts
    assert caught.value.http_status == 500
    assert "Internal error" in str(caught.value)
    assert not fake.activities


async def test_422_is_permanent_with_real_geeks_text_and_not_retried(
    fake: FakeRealGeeks, client: RealGeeksClient, recorder: Recorder
) -> None:
    text = "Property field 'full_baths' is not a valid integer."
    fake.fail_next(status=422, error=text)

    with pytest.raises(PermanentApiError) as caught:
        await post_with_retries(client, recorder)

    assert caught.value.http_status == 422
    assert text in str(caught.value)
    assert caught.value.body is not None and text in caught.value.body
    assert attempts_of(caught.value) == 1
    assert len(fake.requests) == 1
    assert recorder.sleeps == []


async def test_the_fake_itself_validates_activities(
    fake: FakeRealGeeks, client: RealGeeksClient
) -> None:
    with pytest.raises(PermanentApiError, match="'source' is required"):
        await client.post_activities(SITE, LEAD, [{"type": "note", "description": "x"}])
    bad_property = {**ACTIVITY, "property": {"full_baths": "2.5"}}
    with pytest.raises(PermanentApiError, match="'full_baths' is not a valid integer"):
        await client.post_activities(SITE, LEAD, [bad_property])
    assert not fake.activities


async def test_wrong_credentials_are_a_permanent_401(
    fake: FakeRealGeeks, session: aiohttp.ClientSession
) -> None:
    client = RealGeeksClient(session, fake.url, "mywebsite", "wrong")
    with pytest.raises(PermanentApiError) as caught:
        await client.post_activities(SITE, LEAD, [ACTIVITY])
    assert caught.value.http_status == 401
    assert "Invalid credentials" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert not fake.activities


async def test_auth_failure_switch(fake: FakeRealGeeks, client: RealGeeksClient) -> None:
    fake.set_auth_failure()
    with pytest.raises(PermanentApiError) as caught:
        await client.list_users(SITE)
    assert caught.value.http_status == 401
    fake.set_auth_failure(False)
    assert await client.list_users(SITE) == DEFAULT_USERS


async def test_slow_answer_times_out_as_transient(
    fake: FakeRealGeeks, session: aiohttp.ClientSession, recorder: Recorder
) -> None:
    client = RealGeeksClient(
        session, fake.url, "mywebsite", "s3cret", timeout_s=0.2, on_request=recorder.on_request
    )
    fake.delay_next(5.0)
    with pytest.raises(TransientApiError, match="timed out") as caught:
        await client.post_activities(SITE, LEAD, [ACTIVITY])
    assert caught.value.http_status is None
    assert [status for _, status, _ in recorder.reports] == ["timeout"]
    assert 0.15 < recorder.reports[0][2] < 2.0
    assert not fake.activities  # the handler never ran


async def test_timeout_then_success_is_retried(
    fake: FakeRealGeeks, session: aiohttp.ClientSession, recorder: Recorder
) -> None:
    client = RealGeeksClient(session, fake.url, "mywebsite", "s3cret", timeout_s=0.2)
    fake.delay_next(5.0)
    await post_with_retries(client, recorder)
    assert len(fake.requests) == 2
    assert fake.activities[(SITE, LEAD)] == [ACTIVITY]


async def test_late_answer_after_the_write_shows_why_activity_ids_matter(
    fake: FakeRealGeeks, session: aiohttp.ClientSession, recorder: Recorder
) -> None:
    # Real Geeks' activity POST is not idempotent: a write whose answer is lost is
    # written again by a retry. Callers must dedupe by activity_id before posting.
    client = RealGeeksClient(session, fake.url, "mywebsite", "s3cret", timeout_s=0.2)
    fake.delay_next(5.0, after_processing=True)
    await post_with_retries(client, recorder)
    assert fake.activities[(SITE, LEAD)] == [ACTIVITY, ACTIVITY]


async def test_dropped_connection_is_transient(
    fake: FakeRealGeeks, client: RealGeeksClient
) -> None:
    fake.disconnect_next()
    with pytest.raises(TransientApiError) as caught:
        await client.post_activities(SITE, LEAD, [ACTIVITY])
    assert caught.value.http_status is None
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)


async def test_unreachable_server_is_transient(session: aiohttp.ClientSession) -> None:
    async with FakeRealGeeks() as gone:
        url = gone.url
    reports: list[tuple[str, str, float]] = []
    client = RealGeeksClient(
        session, url, "u", "p", timeout_s=1.0, on_request=lambda *r: reports.append(r)
    )
    with pytest.raises(TransientApiError):
        await client.list_users(SITE)
    assert reports[0][:2] == ("list_users", "network")


async def test_faults_are_scoped_by_path(fake: FakeRealGeeks, client: RealGeeksClient) -> None:
    fake.fail_next(status=503, path="/users")
    await client.post_activities(SITE, LEAD, [ACTIVITY])  # not affected
    with pytest.raises(TransientApiError):
        await client.list_users(SITE)
    assert fake.pending_faults == 0
    assert await client.list_users(SITE) == DEFAULT_USERS


async def test_create_and_update_lead(fake: FakeRealGeeks, client: RealGeeksClient) -> None:
    lead_id = "f1f2e3d4-0000-4000-8000-000000000001"
    lead = {"id": lead_id, "source": "AI Caller", "email": "x@example.com", "phone": "555"}
    assert await client.create_lead(SITE, lead) == {}
    await client.update_lead(SITE, lead_id.replace("-", ""), {"phone": "", "city": "Honolulu"})

    key = (SITE, lead_id.replace("-", ""))
    stored = fake.leads[key]
    assert stored["city"] == "Honolulu"
    assert "phone" not in stored  # an empty string unsets the field
    assert [r.status for r in fake.requests] == [201, 200]
    assert fake.requests[1].method == "PATCH"


async def test_create_lead_without_source_is_422(
    fake: FakeRealGeeks, client: RealGeeksClient
) -> None:
    with pytest.raises(PermanentApiError, match="'source' is required") as caught:
        await client.create_lead(SITE, {"email": "x@example.com"})
    assert caught.value.http_status == 422
    assert not fake.leads


async def test_list_users_returns_the_site_users(
    fake: FakeRealGeeks, client: RealGeeksClient
) -> None:
    fake.users[SITE] = [{"id": "1", "role": "Agent", "name": "A"}]
    assert await client.list_users(SITE) == [{"id": "1", "role": "Agent", "name": "A"}]
    assert await client.list_users("other-site") == DEFAULT_USERS


async def test_a_broken_metrics_hook_does_not_fail_the_write(
    fake: FakeRealGeeks, session: aiohttp.ClientSession
) -> None:
    def broken(operation: str, status: str, seconds: float) -> None:
        raise RuntimeError("metrics down")

    client = RealGeeksClient(session, fake.url, "mywebsite", "s3cret", on_request=broken)
    await client.post_activities(SITE, LEAD, [ACTIVITY])
    assert fake.activities[(SITE, LEAD)] == [ACTIVITY]


async def test_fake_rejects_invalid_json_and_non_arrays(
    fake: FakeRealGeeks, session: aiohttp.ClientSession
) -> None:
    url = f"{fake.url}/sites/{SITE}/leads/{LEAD}/activities"
    auth = "Basic " + base64.b64encode(b"mywebsite:s3cret").decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    async with session.post(url, data=b"[{", headers=headers) as response:
        assert response.status == 400
        assert await response.json() == {"error": "Invalid JSON"}
    async with session.post(url, data=b'{"type": "note"}', headers=headers) as response:
        assert response.status == 422
    assert not fake.activities
