"""Which topic and group names belong to a benchmark run, and when none is judged stale
(ops/bench's stale-topic pruning)."""

from __future__ import annotations

import pytest

from ops.bench_e2e_latency import bench_run, delete_stale_bench_topics


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


class _Listing:
    def __init__(self, errors: list[str]) -> None:
        self.valid: list[object] = []
        self.errors = errors

    def result(self, timeout: float) -> _Listing:
        return self


class _UnlistingAdmin:
    """A broker that fails to list its consumer groups; records any deletion asked of it."""

    deleted: list[str] = []

    def __init__(self, config: dict[str, object]) -> None:
        pass

    def list_consumer_groups(self) -> _Listing:
        return _Listing(["broker 1: coordinator not available"])

    def list_topics(self, timeout: float) -> object:
        raise AssertionError("nothing may be looked up for deletion")

    def delete_topics(self, topics: list[str], **_kwargs: object) -> dict[str, object]:
        self.deleted.extend(topics)
        return {}


def test_a_group_listing_error_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A broker that did not list its groups may hold a running benchmark's: nothing is
    # judged stale then.
    import confluent_kafka.admin

    monkeypatch.setattr(confluent_kafka.admin, "AdminClient", _UnlistingAdmin)
    with pytest.raises(RuntimeError, match="consumer groups not listed"):
        delete_stale_bench_topics("127.0.0.1:1")
    assert _UnlistingAdmin.deleted == []
