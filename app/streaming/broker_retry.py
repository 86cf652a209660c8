"""Keep trying a Kafka write the broker refused for a while, instead of dead-lettering it.

A message is dead-lettered for what is wrong with it; a broker that is restarting, has
no leader yet or timed out says nothing about the message. Agents therefore wait and
write again, holding their partition (order is kept), until the broker takes the
records. A record too large for the broker is the message's own fault and is raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError

from realgeeks_sync.app.core.errors import PoisonMessageError

__all__ = ["BROKER_ERRORS", "next_pause", "write_until_acknowledged"]

log = logging.getLogger(__name__)

BROKER_ERRORS: tuple[type[BaseException], ...] = (KafkaError, ConnectionError, TimeoutError)
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)


def next_pause(previous_s: float, least_s: float, most_s: float) -> float:
    """The pause after one more failure in a row: twice the last, at least ``least_s``
    (the first), at most ``most_s``."""
    return min(most_s, max(least_s, previous_s * 2))


async def write_until_acknowledged(
    write: Callable[[], Awaitable[None]],
    *,
    what: str,
    on_retry: Callable[[BaseException], None] | None = None,
    first_delay_s: float = 0.2,
    max_delay_s: float = 10.0,
) -> None:
    """Await ``write()`` until it succeeds, backing off on broker errors.

    Raises:
        PoisonMessageError: the broker refused a record as too large (retrying cannot help).
    """
    delay = first_delay_s
    while True:
        try:
            await write()
            return
        except _TOO_LARGE as exc:
            raise PoisonMessageError(f"{what}: record too large for the broker") from exc
        except BROKER_ERRORS as exc:
            if on_retry is not None:
                on_retry(exc)
            log.warning(
                "kafka write failed; retrying",
                extra={"what": what, "error_type": type(exc).__name__, "delay_s": delay},
            )
            await asyncio.sleep(delay)
            delay = next_pause(delay, first_delay_s, max_delay_s)
