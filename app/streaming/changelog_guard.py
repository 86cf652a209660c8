"""Do not mistake a changelog topic that is still being created for a broken one.

Right after start-up a changelog topic Faust just created can show up in the consumer's
metadata with 0 partitions for a moment. Faust's check that a table's changelog has as
many partitions as its source topic then raises ``PartitionsMismatch`` on the first table
write, and the agent that wrote dead-letters the message or crashes (seen in
tests/integration/test_call_loop.py within two seconds of a worker's start). A count of 0
means "not known yet": the check is left for the next write, as when the count is unknown.
"""

from __future__ import annotations

from typing import Any

from faust.tables.base import Collection

__all__ = ["install"]

_installed = False


def install() -> None:
    """Patch Faust's partition check once per process."""
    global _installed
    if _installed:
        return
    original = Collection._verify_source_topic_partitions

    def verify(self: Any, source_topic: str) -> None:
        checked = source_topic in self._verified_source_topics_for_partitions
        if not checked and not self.app.consumer.topic_partitions(self.changelog_topic_name):
            return  # unknown or still being created: check again on the next write
        original(self, source_topic)

    Collection._verify_source_topic_partitions = verify  # type: ignore[method-assign]
    _installed = True
