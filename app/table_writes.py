"""Table writes that are on the broker before the caller goes on.

A Faust table assignment (``table[key] = value``) only queues its changelog record; a
worker killed a moment later loses it. That is harmless where the input message is read
again after a crash, but not before a side effect outside Kafka: the dialer must record
"this call request is leaving" where a restart will find it *before* the request leaves,
or a restart would send it again. ``write_durably`` sets the values locally and waits
until the broker acknowledged every changelog record (acks=all). Call it inside stream
iteration, like any table write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from app.broker_retry import write_until_acknowledged

__all__ = ["TableChange", "write_durably"]

TableChange = tuple[Any, str, Any]
"""(Faust table, key, value); a value of None deletes the key."""


async def write_durably(
    changes: Sequence[TableChange],
    *,
    what: str = "table writes",
    on_retry: Callable[[BaseException], None] | None = None,
) -> None:
    """Apply ``changes`` to the tables and wait for the changelog acknowledgements.

    Broker refusals are retried (app/broker_retry.py): the records carry whole values,
    so sending them again is harmless.
    """
    if not changes:
        return
    for table, key, value in changes:
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value

    async def send_all() -> None:
        futures = []
        for table, key, value in changes:
            partition = table.partition_for_key(key)
            if value is None:
                futures.append(
                    table.send_changelog(partition, key, None, value_serializer="raw")
                )
            else:
                futures.append(table.send_changelog(partition, key, value))
        await asyncio.gather(*futures)

    await write_until_acknowledged(send_all, what=what, on_retry=on_retry)
