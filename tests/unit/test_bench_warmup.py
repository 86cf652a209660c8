"""The benchmarks' warm-up reaches every partition before the clock starts (ops/bench_e2e_latency.py)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from ops.bench_e2e_latency import warmup_sites
from realgeeks_sync.app.streaming.partitioning import site_partition


@given(
    sites=st.lists(st.uuids().map(str), min_size=1, max_size=60, unique=True),
    partitions=st.integers(min_value=1, max_value=16),
    count=st.integers(min_value=0, max_value=40),
)
def test_every_covered_partition_takes_a_warmup_lead_first(
    sites: list[str], partitions: int, count: int
) -> None:
    covered = {site_partition(s, partitions) for s in sites}
    chosen = warmup_sites(sites, partitions, count)
    assert len(chosen) == max(count, len(covered))
    assert {site_partition(s, partitions) for s in chosen[: len(covered)]} == covered
    assert set(chosen) <= set(sites)


def test_five_leads_over_fifty_sites_leave_no_partition_cold() -> None:
    # The speed-to-lead bench's old warm-up (sites 0-4 of 50) left partitions without a
    # lead; the new one reaches all eight.
    sites = [str(uuid.UUID(int=n + 1)) for n in range(50)]
    chosen = warmup_sites(sites, 8, 5)
    assert {site_partition(s, 8) for s in chosen} == set(range(8))
    assert len({site_partition(s, 8) for s in sites[:5]}) < 8
