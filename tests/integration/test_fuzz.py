"""Bad input at volume against a real worker: both webhook endpoints, signed malformed bodies.

No 500 for anything a sender can send; the agents keep going; poison messages are
dead-lettered with their reasons. Documented statuses come from docs/openapi.yaml.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.testkit.contracts import check_and_delete
from ops.testkit.support import ROOT, Worker, unique, worker_env
from realgeeks_sync.app.ingress.signatures import sign_elevenlabs, sign_realgeeks
from tests.integration.helpers import outputs, send_realgeeks
from tests.strategies import json_values as any_json

pytestmark = pytest.mark.integration

OPENAPI = (ROOT / "docs" / "openapi.yaml").read_text()


def documented_statuses(path: str) -> set[int]:
    section = OPENAPI.split(f"  {path}:\n", 1)[1].split("\n  /", 1)[0]
    return {int(code) for code in re.findall(r'"(\d{3})":', section)}


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = worker_env(
        kafka_bootstrap,
        tmp,
        RGSYNC_CLIENT_RATE_PER_S="100000",
        RGSYNC_CLIENT_BURST="100000",
        RGSYNC_MAX_BODY_BYTES="20000",
        RGSYNC_ADMIN_TOKEN="fuzz-admin-token",
    )
    w = Worker(env=env, log_path=tmp / "worker.log").start()
    yield w
    w.stop()
    # A module's worker outlives each test's check (tests/conftest.py): check it here.
    check_and_delete([env["RGSYNC_TOPIC_PREFIX"]], [(kafka_bootstrap, None)])


def post(url: str, raw: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


json_values = any_json(text=30, keys=12, items=4, entries=5, leaves=15)
field_names = st.sampled_from(
    [
        "id",
        "site_uuid",
        "email",
        "phone",
        "first_name",
        "last_name",
        "activities",
        "created",
        "role",
        "source",
        "user",
        "property",
        "street_address",
        "zip",
        "phone2",
        "second_email",
    ]
)
lead_like = st.dictionaries(field_names, json_values, max_size=10)
actions = st.sampled_from(
    ["created", "updated", "activity_added", "user_updated", "user_deleted", "nonsense", ""]
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(lead_like, json_values.map(lambda v: {"x": v}), st.binary(max_size=200)),
    action=actions,
    site=st.booleans(),
    signed=st.booleans(),
    # What a sender can put in a header: any bytes but controls (sent as latin-1 by urllib,
    # so high bytes arrive as non-UTF-8: the case that once made a 500).
    timestamp=st.one_of(
        st.none(),
        st.binary(min_size=1, max_size=40)
        .map(lambda b: b.decode("latin-1"))
        .filter(lambda v: all(32 <= ord(c) < 127 or ord(c) >= 160 for c in v) and v.strip()),
    ),
)
def test_realgeeks_endpoint_never_500(
    worker: Worker, body: Any, action: str, site: bool, signed: bool, timestamp: str | None
) -> None:
    if isinstance(body, dict) and site:
        body = {**body, "site_uuid": "fuzz-site"}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Lead-Router-Signature"] = sign_realgeeks("test-secret", raw)
    if action:
        headers["X-Lead-Router-Action"] = action
    if timestamp:
        headers["X-Lead-Router-Timestamp"] = timestamp
    status = post(f"{worker.url}/webhooks/realgeeks", raw, headers)
    assert (status in documented_statuses("/webhooks/realgeeks") and status < 500) or status == 503
    if not signed:
        assert status == 401


el_types = st.sampled_from(
    ["post_call_transcription", "call_initiation_failure", "post_call_audio", "something_new"]
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=el_types,
    data=st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(
                [
                    "conversation_id",
                    "metadata",
                    "analysis",
                    "transcript",
                    "status",
                    "failure_reason",
                    "conversation_initiation_client_data",
                ]
            ),
            json_values,
            max_size=7,
        ),
    ),
    age=st.integers(min_value=-3600, max_value=3600),
    raw_junk=st.binary(max_size=100),
    use_junk=st.booleans(),
)
def test_elevenlabs_endpoint_never_500(
    worker: Worker, kind: str, data: Any, age: int, raw_junk: bytes, use_junk: bool
) -> None:
    raw = (
        raw_junk
        if use_junk
        else json.dumps({"type": kind, "event_timestamp": int(time.time()), "data": data}).encode()
    )
    t = int(time.time()) - age
    headers = {
        "Content-Type": "application/json",
        "ElevenLabs-Signature": sign_elevenlabs("el-secret", raw, t),
    }
    status = post(f"{worker.url}/webhooks/elevenlabs", raw, headers)
    assert (status in documented_statuses("/webhooks/elevenlabs") and status < 500) or status == 503
    if age > 1800 or age < -300:
        assert status == 401


def test_signed_poison_is_deadlettered_with_reasons_and_agents_go_on(
    worker: Worker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    site = unique("site")
    poison = [
        ("created", {"id": "no-site", "tag": site}),
        ("activity_added", {"site_uuid": site, "activities": {"not": "a list"}}),
        ("activity_added", {"site_uuid": site}),
        ("user_deleted", {"site_uuid": site}),
    ]
    for action, body in poison:
        assert send_realgeeks(worker, body, action=action) == 200
    raw = json.dumps(
        {"type": "post_call_transcription", "tag": site, "data": {"conversation_id": 5}}
    ).encode()
    assert (
        post(
            f"{worker.url}/webhooks/elevenlabs",
            raw,
            {"ElevenLabs-Signature": sign_elevenlabs("el-secret", raw)},
        )
        == 200
    )
    marker = {
        "site_uuid": site,
        "id": unique("marker"),
        "email": "alive@example.com",
        "source": "Web",
    }
    assert send_realgeeks(worker, marker, action="created") == 200
    events = outputs(
        kafka_bootstrap,
        worker,
        "leads.normalized",
        count=1,
        timeout=60,
        match=lambda e: e["source_lead_id"] == marker["id"].lower(),
    )
    assert events, "normalize_leads stopped after poison"
    dead = outputs(
        kafka_bootstrap,
        worker,
        "sync.deadletter",
        count=5,
        timeout=30,
        match=lambda d: site in (d.get("value") or ""),
    )
    assert len(dead) >= 5
    assert all(d["error"] and d["error_type"] and d["topic"] for d in dead)


def get(url: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


header_text = (
    st.binary(min_size=0, max_size=60)
    .map(lambda b: b.decode("latin-1"))
    .filter(lambda v: all(32 <= ord(c) < 127 or ord(c) >= 160 for c in v))
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    scheme=st.sampled_from(["Bearer ", "bearer ", "Basic ", "", "Bearer  "]),
    token=header_text,
    route=st.sampled_from(
        [
            "/tables/leads/{site_uuid}/{lead_id}",
            "/tables/identity/{site_uuid}",
            "/tables/processed/{site_uuid}/{message_id}",
        ]
    ),
)
def test_tables_authorization_never_500(
    worker: Worker, scheme: str, token: str, route: str
) -> None:
    # High bytes go out as latin-1, so they arrive as bytes that are not UTF-8: once a 500.
    url = route.format(site_uuid="fuzz-site", lead_id="l-1", message_id="m-1")
    status = get(f"{worker.url}{url}?email=a%40b.co", {"Authorization": scheme + token})
    # The token is checked before anything else: every one of these is a documented 401.
    assert status == 401 and status in documented_statuses(route)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(
        st.one_of(
            st.just(""),
            st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=70),
            st.just("good"),
        ),
        min_size=1,
        max_size=12,
    ),
    padding=st.integers(min_value=0, max_value=600),
)
def test_elevenlabs_signature_header_shapes_never_500(
    worker: Worker, values: list[str], padding: int
) -> None:
    raw = json.dumps({"type": "post_call_transcription", "data": {"conversation_id": "c"}}).encode()
    t = int(time.time())
    good = sign_elevenlabs("el-secret", raw, t).split("v0=")[1]
    header = f"t={t}," + ",".join(f"v0={good if v == 'good' else v}" for v in values)
    header += "," + "x" * padding if padding else ""  # HTTP strips trailing spaces: pad inside
    status = post(
        f"{worker.url}/webhooks/elevenlabs",
        raw,
        {"Content-Type": "application/json", "ElevenLabs-Signature": header},
    )
    assert status in documented_statuses("/webhooks/elevenlabs") and (status < 500 or status == 503)
    acceptable = (
        "good" in values
        and len(values) <= 5
        and all(v == "good" or (len(v) == 64) for v in values)
        and len(header) <= 512
    )
    if not acceptable:
        assert status == 401
