"""When calls may leave: on a tick, once every opt-out written before it was read.

A lead's call context and the opt-outs come on different topics, and Kafka orders no
topic against another: a context can be read before an opt-out written before it (a
do-not-call import racing a new lead). So the agent, when it applies a tick (after every
context the tick can dial was read), asks the broker for the end of the site's sync.optouts
partition, and the tick dials only once the agent has read that partition up to that end.
An opt-out acknowledged before the ask (so any written before such a context) is always
applied first; one acknowledged after it holds the ticks that follow.
"""

from __future__ import annotations

from realgeeks_sync.app.domain.dialing.events import DialerEvent, Tick

__all__ = ["may_dial"]


def may_dial(event: DialerEvent, optouts_read: int | None) -> bool:
    """True when ``event`` may start calls: a tick with a known opt-outs end that the
    agent's next offset in that partition (``optouts_read``; None: nothing read) reached."""
    if not isinstance(event, Tick) or event.optouts_end is None:
        return False
    if optouts_read is None:
        return event.optouts_end == 0
    return optouts_read >= event.optouts_end
