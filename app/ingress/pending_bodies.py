"""A bound on request-body bytes held before their signature is checked, over all requests.

Bodies are buffered before they can be authenticated (the signature covers the whole
body). Without a bound, anyone could hold (limit x connections) bytes of memory in the
ingress; with it, a request that would pass the bound is answered 503 with Retry-After
and the bytes of everyone else's requests stay available. Authenticated bodies leave the
count: they are what the service is for.
"""

from __future__ import annotations

from types import TracebackType

from realgeeks_sync.app.core.errors import IngressBusyError

__all__ = ["BodyHold", "PendingBodies"]


class PendingBodies:
    """Bytes of unauthenticated bodies held at once (one event loop: no lock needed)."""

    def __init__(self, limit_bytes: int, *, retry_after_s: float = 1.0) -> None:
        self.limit_bytes = limit_bytes
        self.retry_after_s = retry_after_s
        self.held_bytes = 0

    def hold(self) -> BodyHold:
        """A hold for one request's body (``with budget.hold() as hold``); its bytes are
        given back when the block ends."""
        return BodyHold(self)


class BodyHold:
    """The bytes one request holds of a PendingBodies budget, given back on leaving its block.

    A class, not a @contextmanager generator: that cost 1.3 us more per webhook.
    """

    __slots__ = ("_budget", "bytes")

    def __init__(self, budget: PendingBodies) -> None:
        self._budget = budget
        self.bytes = 0

    def __enter__(self) -> BodyHold:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._budget.held_bytes -= self.bytes
        self.bytes = 0

    def grow_to(self, size: int) -> None:
        """Hold ``size`` bytes in all (more than before, or nothing happens).

        Raises:
            IngressBusyError: the budget would be exceeded; nothing more is held.
        """
        extra = size - self.bytes
        if extra <= 0:
            return
        budget = self._budget
        if budget.held_bytes + extra > budget.limit_bytes:
            raise IngressBusyError(
                "too many request bodies in flight; retry later", budget.retry_after_s
            )
        budget.held_bytes += extra
        self.bytes = size
