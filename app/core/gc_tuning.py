"""Python's cyclic garbage collector in a long-running process: fewer, shorter pauses.

After start-up a worker holds about 110,000 container objects that live until it stops
(modules, Faust's app and services, the identity model). Every full collection visits all
of them with the event loop stopped: at 250 webhooks/s that was 90-180 ms every 7 s
(``gc.callbacks`` timing a worker under ``ops/bench_e2e_latency.py``). ``gc.freeze()``
moves the objects alive at that moment out of the collector's sight, so later collections
visit only what was made since. Frozen objects are never collected, so the heap is frozen
only after a ``gc.collect()``, once a rebalance is over, and thawed again when the next one
revokes partitions or the worker stops (app/streaming/heap_freeze.py). On by default
(RGSYNC_GC_FREEZE): at 250 webhooks/s the longest pause fell from at most 250 ms to at
most 50 ms, and collection time by 40 % (README, RGSYNC_GC_FREEZE under "Architecture",
has the runs). Faust's own ``gc.collect()`` for every table at each rebalance now runs
only for a table that drops a database (app/streaming/rebalance_gc.py).

Young collections keep Python's threshold (700 net allocations: 20 a second at 250
webhooks/s, 0.5 s of a 30 s window). 10,000 cut them to 0.07 s, but the lead's p99 from
the 200 to the call request rose in every side-by-side round (ops/bench_speed_to_lead.py
--leads 400 --rate 20, 3 rounds against freezing alone: 369, 512, 530 against 332, 336,
434 ms), so it was not kept.
"""

from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["PAUSE_BUCKETS", "GcPauses", "freeze", "thaw"]

PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Upper bounds (seconds) of the pause histogram; the last bucket is +Inf."""

_GENERATIONS = 3


def freeze() -> int:
    """Collect what is garbage now, then hide every object still alive from later
    collections; returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Give frozen objects back to the collector (before long-lived ones may become garbage)."""
    gc.unfreeze()


class GcPauses(Collector):
    """Times every collection (``gc.callbacks``) and serves them as Prometheus series.

    The callback only does arithmetic on lists: it runs inside whichever allocation set
    off the collection, in any thread, so it takes no lock (a metric's lock could be the
    one that thread holds).
    """

    def __init__(self, clock: Any = time.perf_counter) -> None:
        self._clock = clock
        self._started = 0.0
        self._buckets = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in range(_GENERATIONS)]
        self._sums = [0.0] * _GENERATIONS
        self._installed = False

    def install(self) -> GcPauses:
        """Start timing collections (idempotent); returns self."""
        if not self._installed:
            gc.callbacks.append(self._on_collection)
            self._installed = True
        return self

    def uninstall(self) -> None:
        """Stop timing collections."""
        if self._installed:
            gc.callbacks.remove(self._on_collection)
            self._installed = False

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        seconds = self._clock() - self._started
        generation = info["generation"]
        # The first bound >= seconds (a bucket counts pauses up to its bound); past the last: +Inf.
        self._buckets[generation][bisect.bisect_left(PAUSE_BUCKETS, seconds)] += 1
        self._sums[generation] += seconds

    def pauses(self, generation: int) -> tuple[int, float]:
        """How many collections of a generation were timed, and their seconds in all."""
        return sum(self._buckets[generation]), self._sums[generation]

    def collect(self) -> Iterator[Any]:
        """The Prometheus series: pause histogram by generation, frozen object count."""
        histogram = HistogramMetricFamily(
            "realgeeks_gc_pause_seconds",
            "Time the process stood still in Python's cyclic garbage collector, by generation",
            labels=["generation"],
        )
        for generation in range(_GENERATIONS):
            counts = self._buckets[generation]
            cumulative: list[tuple[str, float]] = []
            total = 0
            for bound, count in zip((*PAUSE_BUCKETS, float("inf")), counts, strict=True):
                total += count
                cumulative.append((_bound_label(bound), float(total)))
            histogram.add_metric(
                [str(generation)], buckets=cumulative, sum_value=self._sums[generation]
            )
        yield histogram
        frozen = GaugeMetricFamily(
            "realgeeks_gc_frozen_objects",
            "Objects frozen out of the garbage collector's sight (0: nothing frozen)",
        )
        frozen.add_metric([], float(gc.get_freeze_count()))
        yield frozen


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
