"""Which topic and group names belong to a benchmark run (ops/bench's stale-topic pruning)."""

from __future__ import annotations

import pytest

from ops.bench_e2e_latency import bench_run


@pytest.mark.parametrize(
    ("name", "run"),
    [
        ("bench0123456789.leads.normalized", "bench0123456789"),  # a worker's prefix
        ("bench0123456789", "bench0123456789"),  # its app id, the consumer group
        ("bench0123456789-rgsync-identity-changelog", "bench0123456789"),
        ("floorabcdef0123-hop1", "floorabcdef0123"),  # bench_faust_floor's app
        ("rgbench01234567.raw", "rgbench01234567"),  # bench_ingest's topics
    ],
)
def test_a_benchmark_s_names_give_its_run(name: str, run: str) -> None:
    assert bench_run(name) == run


@pytest.mark.parametrize(
    "name",
    [
        "rgsync.leads.normalized",  # a deployment's topics are never pruned
        "bench",
        "benchmarks.raw",
        "bench0123456789x.raw",  # one hex digit too many: not a run's prefix
        "bench012345678.raw",  # one too few
        "Xbench0123456789.raw",
        "__consumer_offsets",
    ],
)
def test_other_names_belong_to_no_run(name: str) -> None:
    assert bench_run(name) is None
