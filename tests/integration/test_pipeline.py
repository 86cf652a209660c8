"""Raw webhooks to normalized events on a real broker: dedup, identity, tables, restarts."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from ops.testkit.support import Worker, unique
from tests.integration.helpers import outputs, send_realgeeks

pytestmark = pytest.mark.integration


def lead(site: str, **fields: Any) -> dict[str, Any]:
    body = {"site_uuid": site, "id": unique("lead"), "source": "Website", "role": "Buyer"}
    body.update(fields)
    return body


def test_fixture_lead_becomes_events(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, realgeeks_fixture: dict[str, Any]
) -> None:
    w = start_worker(RGSYNC_REALGEEKS_SECRETS="seekrit")
    from tests.integration.helpers import _post

    status = _post(
        f"{w.url}/webhooks/realgeeks",
        realgeeks_fixture["body"],
        {"X-Lead-Router-Signature": realgeeks_fixture["signature"]},
    )
    assert status == 200
    (event,) = outputs(kafka_bootstrap, w, "leads.normalized", count=1)
    assert event["schema"] == "lead.v1" and event["op"] == "created"
    assert event["lead_id"] == "a27c20af4497415d9e4e7334dd1d40d2"
    assert event["lead"]["email"] == "jack@mail.com"
    assert event["lead"]["phone"] == "+18088172382"
    acts = outputs(kafka_bootstrap, w, "activities.normalized", count=3)
    assert sorted(a["type"] for a in acts) == ["saved_search_added", "search_performed", "visited"]
    assert all(a["direction"] == "inbound" for a in acts)
    (ctx,) = outputs(kafka_bootstrap, w, "calls.context", count=1)
    assert ctx["lead_id"] == event["lead_id"] and ctx["eligible"] is True
    assert all(isinstance(v, (str, int, float, bool)) for v in ctx["dynamic_variables"].values())
    assert ctx["dynamic_variables"]["lead_id"] == event["lead_id"]


def test_duplicates_of_one_message_id_give_one_event(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    w = start_worker()
    site = unique("site")
    body = lead(site, email="dup@example.com", first_name="Dee")
    for _ in range(3):
        assert send_realgeeks(w, body, action="created", message_id="same-id") == 200
    marker = lead(site, email="marker@example.com")
    assert send_realgeeks(w, marker, action="created", message_id="marker-id") == 200
    events = outputs(kafka_bootstrap, w, "leads.normalized", count=2, timeout=40)
    assert [e["source_lead_id"] for e in events].count(body["id"]) == 1


def test_same_person_as_two_leads_is_merged_and_lookalike_is_not(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    w = start_worker(RGSYNC_ADMIN_TOKEN="tok")
    site = unique("site")
    first = lead(
        site,
        first_name="Robert",
        last_name="Johnson",
        email="Bob.Johnson@Example.com",
        phone="(808) 817-2382",
        street_address="12 Main Street",
        city="Honolulu",
        zip="96813",
    )
    same = lead(
        site,
        first_name="Rob",
        last_name="Jonson",
        email=" bob.johnson@example.COM ",
        phone="+1 808.817.2382",
        street_address="12 Main St",
        city="Honolulu",
        zip="96813",
    )
    other = lead(
        site,
        first_name="Alice",
        last_name="Johnson",
        email="alice.j@example.org",
        phone="808-555-0199",
        street_address="99 Ocean Ave",
        city="Honolulu",
        zip="96815",
    )
    for body in (first, same, other):
        assert send_realgeeks(w, body, action="created") == 200
    events = outputs(kafka_bootstrap, w, "leads.normalized", count=3, timeout=40)
    by_source = {e["source_lead_id"]: e for e in events}
    canonical = by_source[first["id"]]["lead_id"]
    merged = by_source[same["id"]]
    assert merged["op"] == "merged" and merged["lead_id"] == canonical
    assert merged["match"]["rule"] == "email"
    assert by_source[other["id"]]["op"] == "created"
    assert by_source[other["id"]]["lead_id"] != canonical
    # Inspection: any alias resolves to the canonical lead.
    req = urllib.request.Request(
        f"{w.url}/tables/leads/{site}/{same['id']}", headers={"Authorization": "Bearer tok"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        found = json.loads(resp.read())
    assert found["lead_id"] == canonical


def test_restart_without_rocksdb_recovers_from_changelog(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Any
) -> None:
    import shutil

    w = start_worker()
    site = unique("site")
    first = lead(site, email="restart@example.com", first_name="Rita")
    assert send_realgeeks(w, first, action="created", message_id="r-1") == 200
    outputs(kafka_bootstrap, w, "leads.normalized", count=1)
    w.stop()
    shutil.rmtree(w.env["RGSYNC_DATA_DIR"])
    w2 = Worker(env=w.env, log_path=tmp_path / "restarted.log").start()
    try:
        # A redelivery is still a duplicate, and the same person still matches by email.
        assert send_realgeeks(w2, first, action="created", message_id="r-1") == 200
        again = lead(site, email="RESTART@example.com", first_name="Rita")
        assert send_realgeeks(w2, again, action="created", message_id="r-2") == 200
        events = outputs(kafka_bootstrap, w2, "leads.normalized", count=2, timeout=60)
        assert len(events) == 2
        assert events[1]["op"] == "merged" and events[1]["lead_id"] == events[0]["lead_id"]
    finally:
        w2.stop()


def test_poison_messages_go_to_deadletter_and_stream_goes_on(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    w = start_worker()
    site = unique("site")
    # Signed, a JSON object, an action: accepted at the door, but not processable.
    assert send_realgeeks(w, {"action": "created", "id": "x"}, action="created") == 200
    assert (
        send_realgeeks(
            w, {"site_uuid": site, "activities": "nope", "id": "y"}, action="activity_added"
        )
        == 200
    )
    good = lead(site, email="after-poison@example.com")
    assert send_realgeeks(w, good, action="created") == 200
    dead = outputs(kafka_bootstrap, w, "sync.deadletter", count=2)
    assert {d["error_type"] for d in dead} <= {"PoisonMessageError", "LeadInputError"}
    assert all(d["value"] and d["error"] for d in dead)
    events = outputs(kafka_bootstrap, w, "leads.normalized", count=1)
    assert events[0]["source_lead_id"] == good["id"]
    time.sleep(0)
