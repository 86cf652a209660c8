"""The garbage collector's tuning: freeze, thaw, the pause metric and the rebalance hooks."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import faust
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from realgeeks_sync.app.core import gc_tuning
from realgeeks_sync.app.core.gc_tuning import GcPauses
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.streaming import heap_freeze


class Node:
    """A container that can take part in a reference cycle (and be weakly referenced)."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def gc_state() -> Iterator[None]:
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks
    gc.enable()


def _cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def test_freeze_hides_live_objects_and_thaw_gives_them_back() -> None:
    kept = Node()
    frozen = gc_tuning.freeze()
    assert frozen > 0 and gc.get_freeze_count() == frozen
    assert not any(o is kept for o in gc.get_objects())
    gc_tuning.thaw()
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())


def test_a_frozen_cycle_outlives_collections_until_thawed() -> None:
    # Why the heap is thawed before Faust lets table partitions go: a RocksDB handle
    # caught in a frozen cycle would never be collected, so never closed.
    alive = _cycle()
    before = weakref.ref(alive)
    gc_tuning.freeze()
    del alive  # the last outside reference: the cycle is garbage from now on
    after = weakref.ref(_cycle())
    gc.collect()
    assert after() is None  # made after the freeze: collected as ever
    assert before() is not None  # alive at the freeze: out of the collector's sight
    gc_tuning.thaw()
    gc.collect()
    assert before() is None


def _ticks(*values: float) -> Iterator[float]:
    yield from values
    while True:
        yield values[-1]


def test_pauses_are_timed_by_generation_into_buckets() -> None:
    ticks = _ticks(10.0, 10.003, 20.0, 20.3)
    pauses = GcPauses(clock=lambda: next(ticks))
    registry = CollectorRegistry()
    registry.register(pauses)
    gc.disable()  # no automatic collection (another thread's) takes the clock's ticks
    pauses.install()
    try:
        gc.collect(2)  # 3 ms
        gc.collect(2)  # 300 ms
    finally:
        pauses.uninstall()
        gc.enable()
    gc.collect(2)  # not timed any more
    count, seconds = pauses.pauses(2)
    assert count == 2 and seconds == pytest.approx(0.303)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }

    def bucket(le: str) -> float:
        return samples[("realgeeks_gc_pause_seconds_bucket", (("generation", "2"), ("le", le)))]

    assert bucket("0.0025") == 0
    assert bucket("0.005") == 1
    assert bucket("0.25") == 1
    assert bucket("0.5") == 2
    assert bucket("+Inf") == 2
    assert samples[("realgeeks_gc_pause_seconds_count", (("generation", "2"),))] == 2
    assert samples[("realgeeks_gc_pause_seconds_sum", (("generation", "2"),))] == pytest.approx(
        0.303
    )
    assert samples[("realgeeks_gc_pause_seconds_count", (("generation", "0"),))] == 0


def test_every_registry_serves_the_frozen_count() -> None:
    metrics = Metrics()
    gc_tuning.freeze()
    text = metrics.render().decode()
    frozen = next(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "realgeeks_gc_frozen_objects"
    )
    assert frozen == gc.get_freeze_count() > 0


def _app() -> faust.App:
    return faust.App("gc-tuning-test", broker="kafka://127.0.0.1:1", store="memory://")


async def test_a_worker_freezes_once_the_rebalance_is_over_and_thaws_on_revocation() -> None:
    app = _app()
    heap_freeze.install(app, settle_s=0.01)
    app.rebalancing = True  # recovery signals complete before Faust ends the rebalance
    await app.on_rebalance_complete.send()
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() == 0
    app.rebalancing = False
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() > 0
    await app.on_partitions_revoked.send(set())
    assert gc.get_freeze_count() == 0
    await app.on_rebalance_complete.send()
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() > 0
    await app.on_before_shutdown.send()
    assert gc.get_freeze_count() == 0


async def test_a_revocation_drops_a_freeze_still_waiting() -> None:
    app = _app()
    heap_freeze.install(app, settle_s=0.01)
    app.rebalancing = True
    await app.on_rebalance_complete.send()
    await app.on_partitions_revoked.send(set())  # a new rebalance before the last was over
    app.rebalancing = False
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() == 0


async def test_a_stale_completion_freezes_only_after_the_new_rebalance_is_over() -> None:
    # Faust may signal the old generation's recovery complete after the new rebalance
    # revoked its partitions: nothing is frozen until that rebalance ends.
    app = _app()
    heap_freeze.install(app, settle_s=0.01)
    app.rebalancing = True
    await app.on_partitions_revoked.send(set())
    await app.on_rebalance_complete.send()  # the stale one
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() == 0
    app.rebalancing = False  # the new generation's recovery ended it
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() > 0


async def test_a_rebalance_that_never_ends_gives_up_waiting_and_freezes_nothing() -> None:
    app = _app()
    heap = heap_freeze.HeapFreeze(app, settle_s=0.005, tries=3)
    app.rebalancing = True
    heap.on_recovered(app)
    await asyncio.sleep(0.1)
    assert heap._pending is None  # three checks, then no timer left behind
    app.rebalancing = False
    await asyncio.sleep(0.03)
    assert gc.get_freeze_count() == 0


def test_a_pause_on_a_bound_counts_in_that_bucket_and_one_past_the_last_in_inf() -> None:
    ticks = _ticks(0.0, 0.005, 1.0, 3.0)
    pauses = GcPauses(clock=lambda: next(ticks))
    gc.disable()
    pauses.install()
    try:
        gc.collect(0)  # exactly 5 ms
        gc.collect(0)  # 2 s, past the last bound
    finally:
        pauses.uninstall()
        gc.enable()
    registry = CollectorRegistry()
    registry.register(pauses)
    buckets = {
        s.labels["le"]: s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == "realgeeks_gc_pause_seconds_bucket" and s.labels["generation"] == "0"
    }
    assert buckets["0.0025"] == 0 and buckets["0.005"] == 1
    assert buckets["1.0"] == 1 and buckets["+Inf"] == 2
