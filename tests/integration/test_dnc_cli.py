"""``realgeeks-sync dnc add|remove|list`` on the real broker: what an operator types ends up
on sync.optouts as optout.v1 events, idempotently (no worker: the topic is the list)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.contracts import read_to_end, validator
from ops.testkit.support import unique, worker_env
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.partitioning import site_partition
from realgeeks_sync.app.streaming.topics import ensure_topics
from tests.integration.helpers import cli

pytestmark = pytest.mark.integration

NUMBER = "+18088172382"
# Real Geeks lead id as an operator may paste it; the pipeline stores it as LEAD.
PASTED_LEAD = "{A27C20AF-4497-415D-9E4E-7334DD1D40D2}"
LEAD = "a27c20af4497415d9e4e7334dd1d40d2"


def optouts(bootstrap: str, topic: str) -> list[Any]:
    """Every record on the topic now (Messages, in offset order: one site, one partition)."""
    return read_to_end(bootstrap, [topic])[topic]


def counts(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def listed(out: str) -> tuple[list[dict[str, Any]], str]:
    """``dnc list``'s entries and its footer line."""
    *lines, footer = out.strip().splitlines()
    return [json.loads(line) for line in lines], footer


def checked(message: Any, site: str, partitions: int) -> dict[str, Any]:
    """One record's value, its key, partition and optout.v1 shape checked."""
    event = json.loads(message.value())
    assert list(validator("optout.v1").iter_errors(event)) == []
    subject_value = event["phone"] if event["subject"] == "phone" else event["lead_id"]
    assert message.key() == f"{site}:{subject_value}".encode()
    assert message.partition() == site_partition(site, partitions)
    assert re.fullmatch(r"[0-9a-f]{32}", event.pop("event_id"))
    at = event.pop("at")
    assert at.endswith("Z") and datetime.fromisoformat(at).tzinfo is not None
    return event  # type: ignore[no-any-return]


async def test_dnc_add_list_and_remove_a_number_and_a_lead(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = worker_env(kafka_bootstrap, tmp_path)
    settings = Settings.from_env(env)
    await asyncio.to_thread(ensure_topics, settings)
    topic = settings.topic(names.OPTOUTS)
    site = unique("site")
    who = ("--site-uuid", site, "--by", "ops-ana")

    # The same number twice in one command (once in national form): one event.
    code, out, err = await cli(
        env, "dnc", "add", NUMBER, "(808) 817-2382", "--region", "US", *who, "--reason", "asked"
    )
    assert code == 0, err
    assert counts(out) == {"written": 1, "unchanged": 1, "invalid": 0, "undelivered": 0}
    code, out, err = await cli(env, "dnc", "add", "--lead", PASTED_LEAD, *who)
    assert code == 0, err
    assert counts(out)["written"] == 1
    common = {"schema": "optout.v1", "site_uuid": site, "action": "opt_out", "source": "operator"}
    common["by"] = "ops-ana"
    records = await asyncio.to_thread(optouts, kafka_bootstrap, topic)
    assert [checked(m, site, settings.partitions) for m in records] == [
        {**common, "subject": "phone", "lead_id": None, "phone": NUMBER, "reason": "asked"},
        {**common, "subject": "lead", "lead_id": LEAD, "phone": None, "reason": "operator"},
    ]

    # Again, in other spellings: nothing is written, the list has one entry for each.
    code, out, err = await cli(env, "dnc", "add", "+1 808 817 2382", *who)
    assert code == 0, err
    assert counts(out) == {"written": 0, "unchanged": 1, "invalid": 0, "undelivered": 0}
    code, out, err = await cli(env, "dnc", "add", "--lead", LEAD, *who)
    assert (code, counts(out)["written"]) == (0, 0), err
    assert len(await asyncio.to_thread(optouts, kafka_bootstrap, topic)) == 2
    code, out, err = await cli(env, "dnc", "list", "--site-uuid", site)
    assert code == 0, err
    entries, footer = listed(out)
    assert [(e["subject"], e["value"], e["source"], e["by"]) for e in entries] == [
        ("lead", LEAD, "operator", "ops-ana"),
        ("phone", NUMBER, "operator", "ops-ana"),
    ]
    assert footer == "# 2 entr(ies) on the do-not-call list"

    # remove writes the opt-in; a second remove writes nothing.
    code, out, err = await cli(env, "dnc", "remove", NUMBER, *who, "--reason", "wants calls")
    assert code == 0, err
    assert counts(out)["written"] == 1
    code, out, err = await cli(env, "dnc", "remove", NUMBER, *who)
    assert code == 0, err
    assert counts(out) == {"written": 0, "unchanged": 1, "invalid": 0, "undelivered": 0}
    records = await asyncio.to_thread(optouts, kafka_bootstrap, topic)
    assert len(records) == 3
    assert checked(records[2], site, settings.partitions) == {
        **common,
        "action": "opt_in",
        "subject": "phone",
        "lead_id": None,
        "phone": NUMBER,
        "reason": "wants calls",
    }
    code, out, err = await cli(env, "dnc", "list", "--site-uuid", site)
    entries, footer = listed(out)
    assert [(e["subject"], e["value"]) for e in entries] == [("lead", LEAD)]
    assert footer == "# 1 entr(ies) on the do-not-call list"

    code, out, err = await cli(env, "dnc", "remove", "--lead", PASTED_LEAD, *who)
    assert (code, counts(out)["written"]) == (0, 1), err
    code, out, err = await cli(env, "dnc", "list", "--site-uuid", site)
    assert listed(out) == ([], "# 0 entr(ies) on the do-not-call list")
