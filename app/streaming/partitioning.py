"""Which partition a record goes to: every record about a site lands on the site's partition.

The raw Real Geeks topic is keyed by site, so Kafka's default partitioner (murmur2 of the
key, as in Java, aiokafka and librdkafka's ``murmur2_random``) puts a site's webhooks on one
partition. Per-lead topics are keyed ``<site_uuid>:<lead_id>`` by contract, but they are
partitioned by the site part of the key, with the same hash. So everything about a site
(its contexts, opt-outs, dialer events and the dialer's tables) shares one partition: the
dialer can check a phone number's opt-out, whichever lead it came from, and count a site's
calls in flight, on one worker, in one ordered stream. Per-key ordering is unchanged.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2

__all__ = ["site_of_key", "site_partition"]


def site_of_key(key: str) -> str:
    """Return the site part of a ``<site_uuid>:<rest>`` key (the whole key when it has none)."""
    return key.split(":", 1)[0]


def site_partition(site_uuid: str, partitions: int) -> int:
    """Return the partition of a site among ``partitions``, as Kafka's default partitioner would.

    Raises:
        ValueError: ``partitions`` is not positive.
    """
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    return _site_hash(site_uuid) % partitions


@lru_cache(maxsize=4096)
def _site_hash(site_uuid: str) -> int:
    # aiokafka's murmur2 is pure Python: ~2 % of a worker's CPU in a backlog (py-spy), for
    # the same few sites on every output record. Bounded: keys come from senders.
    return murmur2(site_uuid.encode("utf-8")) & 0x7FFFFFFF
