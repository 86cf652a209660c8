"""An inbound call in the lead's story and the day's figures, on a real broker with the
fake Real Geeks and ElevenLabs: its end appears once, even when its record is read again."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from ops.testkit.dialer import NUMBERS
from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, drain, unique
from tests.integration.helpers import send_realgeeks
from tests.integration.test_call_loop import wait_for
from tests.integration.test_conversations import (
    HOOK,
    inbound_env,
    known_to_the_directory,
    new_lead,
    with_initiation,
)
from tests.integration.test_dialer import TOKEN
from tests.integration.test_sites_and_operators import page

pytestmark = pytest.mark.integration

ENDED = "Call ended: completed (the lead called the AI)"


def _figure(html: str, label: str) -> str:
    found = re.search(rf'<span class="muted">{re.escape(label)}</span><b>([^<]+)</b>', html)
    return found.group(1) if found else ""


async def test_an_inbound_calls_outcome_is_in_the_lead_s_story_once_and_counts_as_a_contact(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        w = await asyncio.to_thread(start_worker, **inbound_env(rg, el), RGSYNC_ADMIN_TOKEN=TOKEN)
        site, phone = unique("site"), NUMBERS[1]
        body = new_lead(site, phone)
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        with_initiation(el, w)
        await known_to_the_directory(el, phone, body["id"])
        call = await el.inbound_call(phone, agent_id="agent_1", with_conversation_id=True)
        assert call.accepted
        delivery = await el.send_post_call(
            f"{w.url}{HOOK}", "el-secret", call.conversation_id, "success"
        )
        assert delivery.status == 200
        story = f"/ui/leads/{site}/{body['id']}"

        def told(title: str) -> str | None:
            status, text = page(w, story)
            return text if status == 200 and title in text else None

        await wait_for(lambda: told(ENDED))
        # Its call_outcome.v1 record read again, as a replay or a redelivery would be, then
        # another inbound call's after it on the same partition: once that one shows, the
        # record read again was read before it (one agent reads the partition in order).
        topic = w.env["RGSYNC_TOPIC_PREFIX"] + "sync.call-outcomes"
        (record,) = await asyncio.to_thread(drain, kafka_bootstrap, topic, 1)
        later = json.loads(record.value()) | {
            "event_id": uuid.uuid4().hex,
            "conversation_id": unique("conv"),
            "outcome": "no-answer",
        }
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for value in (record.value(), json.dumps(later).encode()):
            producer.produce(topic, value=value, key=record.key(), partition=record.partition())
        assert producer.flush(10) == 0
        text = await wait_for(lambda: told("Call ended: no-answer (the lead called the AI)"))
        assert text.count(ENDED) == 1, text
        dashboard = page(w, "/ui/")[1]
        assert _figure(dashboard, "Calls taken (inbound)") == "2", dashboard
        assert _figure(dashboard, "Calls placed") == "0"
        assert _figure(dashboard, "Contact rate") == "50 %"
