"""Who is calling: caller records, the directory by number, and the choice among leads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.callers import (
    Candidate,
    answer_variables,
    caller_record,
    choose,
    initiation_answer,
)
from realgeeks_sync.app.streaming.caller_directory import CallerDirectory, DirectoryReader

NUMBER = "+18088172382"
OTHER = "+12125550123"


def record(site: str, lead: str, phones: list[str], **extra: Any) -> bytes:
    value = {
        "schema": "caller.v1",
        "site_uuid": site,
        "lead_id": lead,
        "phones": phones,
        "dynamic_variables": {"lead_id": lead, "site_uuid": site, "lead_first_name": lead},
        "eligible": True,
        "as_of": "2026-01-01T00:00:00+00:00",
        "last_ai_call_at": None,
        **extra,
    }
    return json.dumps(value).encode()


def candidate(site: str, lead: str, as_of: str = "", called: str = "") -> Candidate:
    return Candidate(site, lead, as_of, called, {"lead_id": lead})


def test_a_caller_record_holds_every_known_number_once() -> None:
    context = {
        "site_uuid": "s",
        "lead_id": "l",
        "as_of": "2026-01-02T00:00:00+00:00",
        "eligible": True,
        "lead": {"phone": NUMBER, "phone2": None},
        "previous_interactions": {"ai_calls": {"last_at": "2026-01-01T10:00:00+00:00"}},
        "dynamic_variables": {"lead_id": "l", "previous_ai_calls": 1},
    }
    value = caller_record(context, [NUMBER, "808-817-2382", OTHER, "not a number"])
    assert value["phones"] == [NUMBER, OTHER]
    assert value["last_ai_call_at"] == "2026-01-01T10:00:00+00:00"
    assert value["dynamic_variables"] == {"lead_id": "l", "previous_ai_calls": 1}
    assert Candidate.from_record(value) is not None


def test_the_directory_finds_leads_by_number_and_follows_changes(tmp_path: Path) -> None:
    directory = CallerDirectory(tmp_path / "callers")
    directory.apply("s1:a", record("s1", "a", [NUMBER]), partition=0, offset=0)
    directory.apply("s2:b", record("s2", "b", [NUMBER, OTHER]), partition=1, offset=5)
    assert {(c.site_uuid, c.lead_id) for c in directory.candidates(NUMBER)} == {
        ("s1", "a"),
        ("s2", "b"),
    }
    # Lead b's numbers change: the old one no longer finds it.
    directory.apply("s2:b", record("s2", "b", [OTHER]), partition=1, offset=6)
    assert [c.lead_id for c in directory.candidates(NUMBER)] == ["a"]
    assert [c.lead_id for c in directory.candidates(OTHER)] == ["b"]
    # A tombstone (or an unreadable value) removes the lead.
    directory.apply("s1:a", None, partition=0, offset=1)
    assert directory.candidates(NUMBER) == []
    assert directory.offsets() == {0: 2, 1: 7}
    directory.close()
    # Kept across restarts, with the offsets to go on from; cleared when told.
    again = CallerDirectory(tmp_path / "callers")
    assert [c.lead_id for c in again.candidates(OTHER)] == ["b"]
    assert again.offsets() == {0: 2, 1: 7}
    again.clear()
    assert again.candidates(OTHER) == [] and again.offsets() == {}
    again.close()


def test_choice_prefers_the_latest_call_then_the_latest_context() -> None:
    old_called = candidate("s1", "a", as_of="2026-01-05", called="2026-01-02")
    fresh = candidate("s2", "b", as_of="2026-01-09")
    assert choose([fresh, old_called], lambda _site: True) == (old_called, 2)
    newer = candidate("s3", "c", as_of="2026-01-10")
    assert choose([fresh, newer], lambda _site: True) == (newer, 2)
    # Only the sites the called agent serves count.
    assert choose([fresh, old_called], lambda site: site == "s2") == (fresh, 1)
    assert choose([fresh], lambda _site: False) == (None, 0)


@given(st.permutations([candidate(s, lead) for s in ("s1", "s2") for lead in ("a", "b")]))
def test_ties_never_depend_on_arrival_order(pool: list[Candidate]) -> None:
    chosen, count = choose(pool, lambda _site: True)
    assert chosen is not None and (chosen.site_uuid, chosen.lead_id) == ("s1", "a")
    assert count == 4


def test_the_answer_has_every_default_name_either_way() -> None:
    defaults = {"lead_id": "", "lead_first_name": "", "previous_ai_calls": 0, "is_buyer": False}
    known = Candidate(
        "s", "l", "", "", {"lead_id": "l", "lead_first_name": "Ana", "extra": 1, "is_buyer": [1]}
    )
    assert answer_variables(defaults, known) == {
        "lead_id": "l",
        "lead_first_name": "Ana",
        "previous_ai_calls": 0,  # missing in the record: the default
        "is_buyer": False,  # not a scalar: the default
    }
    assert answer_variables(defaults, None) == defaults
    answer = initiation_answer(defaults)
    assert answer == {"type": "conversation_initiation_client_data", "dynamic_variables": defaults}


@pytest.mark.parametrize("value", [b"", b"not json", b"[]", b'{"site_uuid": "s"}'])
def test_unreadable_records_remove_the_lead(tmp_path: Path, value: bytes) -> None:
    directory = CallerDirectory(tmp_path / "callers")
    directory.apply("s:a", record("s", "a", [NUMBER]), partition=0, offset=0)
    directory.apply("s:a", value, partition=0, offset=1)
    assert directory.candidates(NUMBER) == []
    directory.close()


@pytest.mark.parametrize(
    ("error", "level", "waited"),
    [
        (KafkaError.NOT_LEADER_FOR_PARTITION, "WARNING", 1.0),
        (KafkaError.LEADER_NOT_AVAILABLE, "WARNING", 1.0),
        (KafkaError.SASL_AUTHENTICATION_FAILED, "ERROR", 5.0),
    ],
)
def test_a_topic_not_served_yet_is_read_again_soon_without_an_error(
    caplog: pytest.LogCaptureFixture, error: int, level: str, waited: float
) -> None:
    # A fresh deployment's worker: the broker listed the callers topic as led 0.6 s before
    # it served it, and the reader logged an ERROR with a traceback, waiting 5 s.
    reader = DirectoryReader(Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "x"}), None, "t")  # type: ignore[arg-type]
    waits: list[float] = []

    def follow() -> None:
        raise KafkaException(KafkaError(error))

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        reader._stop.set()
        return True

    reader._follow = follow  # type: ignore[method-assign]
    reader._stop.wait = wait  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        reader._run()
    assert waits == [waited]
    assert [r.levelname for r in caplog.records] == [level]
