"""The dialer's records in three key-value tables, and one loop that applies an event.

Tables (Faust tables in the worker, dicts in tests), all on the site's partition:

    dialer_leads   <site_uuid>:<lead_id>            -> LeadRecord JSON
    dialer_sites   <site_uuid>                      -> SiteRecord JSON
                   *:<partition>                    -> SiteRecord JSON: the partition's switch
                                                       for every site (only ``paused``)
    do_not_call    <site_uuid>|lead|<lead_id>       -> DncEntry JSON
                   <site_uuid>|phone|<E.164 number> -> DncEntry JSON

``DialerCore.apply`` is the one order of effects the agent and the property tests share:
send the step's records and dead letters, store its changes (durably when calls follow),
then place its calls.
A crash between any two of these never sends a call request twice: the attempt is stored
before its request leaves, and a stored attempt is never sent again.
Sending and storing wait for the broker as long as it takes, so the window decided at the
step may have closed by then: a request past its ``not_after`` stays home, and its attempt
is settled at once as ``refused``/``window_closed`` (stored durably, like the attempt).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from realgeeks_sync.app.domain.dialing.answers import answer_for_window_closed
from realgeeks_sync.app.domain.dialing.events import DialerEvent, Tick
from realgeeks_sync.app.domain.dialing.machine import (
    CallRequest,
    DeadLetter,
    DialerPolicy,
    Emit,
    Step,
    step,
)
from realgeeks_sync.app.domain.dialing.records import (
    DncEntry,
    LeadRecord,
    LeadStatus,
    SiteRecord,
    all_sites_key,
    is_all_sites,
)

__all__ = ["DialerCore", "DialerStore", "TableWrite", "dnc_key", "lead_record_key"]

TableWrite = tuple[MutableMapping[str, Any], str, Any]
"""(table, key, value): one write of a step; a value of None deletes the key."""

log = logging.getLogger(__name__)


def lead_record_key(site_uuid: str, lead_id: str) -> str:
    """Key of a lead's record in dialer_leads."""
    return f"{site_uuid}:{lead_id}"


def dnc_key(site_uuid: str, subject: str, value: str) -> str:
    """Key of a do-not-call entry: ``<site>|lead|<id>`` or ``<site>|phone|<E.164>``."""
    return f"{site_uuid}|{subject}|{value}"


class DialerStore:
    """Reads and writes the dialer's records in three mutable mappings.

    ``partition_of``: a site's partition (app/streaming/partitioning.py in the worker), which
    says whose switch for every site holds it; one partition when not given (tests).
    """

    def __init__(
        self,
        leads: MutableMapping[str, Any],
        sites: MutableMapping[str, Any],
        dnc: MutableMapping[str, Any],
        partition_of: Callable[[str], int] = lambda _site: 0,
    ) -> None:
        self.leads = leads
        self.sites = sites
        self.dnc_table = dnc
        self.partition_of = partition_of

    def lead(self, site_uuid: str, lead_id: str) -> LeadRecord | None:
        """The lead's record (None when absent or unreadable)."""
        raw = self.leads.get(lead_record_key(site_uuid, lead_id))
        if not isinstance(raw, dict):
            return None
        try:
            return LeadRecord.from_json(raw)
        except (KeyError, ValueError, TypeError):
            # An unreadable record must not make a lead callable: keep it as uncertain.
            log.warning("unreadable dialer record; treated as uncertain")
            return LeadRecord(site_uuid, lead_id, LeadStatus.UNCERTAIN, reason="unreadable_record")

    def site(self, site_uuid: str) -> SiteRecord | None:
        """The site's record (None when absent or unreadable)."""
        raw = self.sites.get(site_uuid)
        if not isinstance(raw, dict):
            return None
        try:
            return SiteRecord.from_json(raw)
        except (KeyError, ValueError, TypeError):
            log.warning("unreadable dialer site record; starting a new one")
            return None

    def all_sites(self, site_uuid: str) -> SiteRecord | None:
        """The switch for every site on the site's partition (None: never paused)."""
        if is_all_sites(site_uuid):
            return self.site(site_uuid)
        key = all_sites_key(self.partition_of(site_uuid))
        raw = self.sites.get(key)
        if raw is None:
            return None
        record = self.site(key)
        # A damaged switch must still hold calls, as a damaged do-not-call entry does.
        return record or SiteRecord(key, paused="unknown (unreadable switch)")

    def dnc(self, site_uuid: str, subject: str, value: str) -> DncEntry | None:
        """The do-not-call entry of a lead or number, if any."""
        raw = self.dnc_table.get(dnc_key(site_uuid, subject, value))
        if raw is None:
            return None
        # Any stored value blocks: a damaged entry must still stop calls.
        return DncEntry.from_json(raw if isinstance(raw, dict) else {})

    def changes(self, result: Step, site_uuid: str) -> list[TableWrite]:
        """The writes of a step, in one list."""
        writes: list[TableWrite] = []
        if result.site is not None:
            writes.append((self.sites, site_uuid, result.site.to_json()))
        for record in result.leads.values():
            key = lead_record_key(record.site_uuid, record.lead_id)
            writes.append((self.leads, key, record.to_json()))
        for (subject, value), entry in result.dnc.items():
            key = dnc_key(site_uuid, subject, value)
            writes.append((self.dnc_table, key, entry.to_json() if entry else None))
        return writes


class DialerCore:
    """Applies events to the store with the effects in the one safe order."""

    def __init__(
        self,
        store: DialerStore,
        policy: DialerPolicy | Callable[[str], DialerPolicy],
        clock: Callable[[], datetime],
        *,
        send: Callable[[Sequence[Emit], Sequence[DeadLetter]], Awaitable[None]],
        persist: Callable[[list[TableWrite], bool], Awaitable[None]],
        place: Callable[[CallRequest], None],
        live: Callable[[], frozenset[str]] = frozenset,
        dispatching: Callable[[DialerEvent], bool] = lambda _event: True,
    ) -> None:
        self.store = store
        # One policy for every site, or each site's own (sites file: hours, days, caps).
        self.policy_for: Callable[[str], DialerPolicy] = (
            (lambda _site: policy) if isinstance(policy, DialerPolicy) else policy
        )
        self.clock = clock
        self._send = send
        self._persist = persist
        self._place = place
        self._live = live
        self._dispatching = dispatching

    async def apply(self, event: DialerEvent) -> Step:
        """Decide, send the records, store the changes, then start the calls."""
        if isinstance(event, Tick):
            event = replace(event, live=self._live())
        policy = self.policy_for(event.site_uuid)
        result = step(
            self.store,
            event,
            self.clock(),
            policy,
            dispatching=policy.enabled and self._dispatching(event),
        )
        await self._send(result.emits, result.deadletters)
        # Durable (on the broker before going on) only where a call request follows: other
        # changes are as safe as any table write, since the event is read again until they
        # are flushed (Faust flushes the producer before it commits an offset).
        await self._persist(self.store.changes(result, event.site_uuid), bool(result.calls))
        late: list[CallRequest] = []
        for call in result.calls:
            # The window was decided at the step; the writes above may have taken minutes.
            if call.may_leave(self.clock()):
                self._place(call)
            else:
                late.append(call)
        if late:
            result = await self._keep_home(result, late, policy)
        return result

    async def _keep_home(
        self, result: Step, late: Sequence[CallRequest], policy: DialerPolicy
    ) -> Step:
        """Settle requests past their ``not_after`` as never sent; the step without them.

        Their attempts end refused under their own ids (a stored attempt is never sent): the
        lead waits again, and its next window makes a new attempt. The settlement is durable,
        like the attempt: a restart must not take a request that never left for one lost in
        flight (uncertain).
        """
        leads, dnc = dict(result.leads), dict(result.dnc)
        site, emits, deadletters = result.site, list(result.emits), list(result.deadletters)
        counts = list(result.counts)
        for call in late:
            log.info(
                "call request not sent: its calling window closed",
                extra={
                    "site": call.site_uuid,
                    "lead_id": call.lead_id,
                    "attempt_id": call.attempt_id,
                    "late_s": round((self.clock() - call.not_after).total_seconds(), 3),
                },
            )
            counts.remove(("requested", ""))  # the step counted it as sent; it was not
            answer = answer_for_window_closed(call.site_uuid, call.lead_id, call.attempt_id)
            # No dispatch: calls leave only where they are checked as above.
            settled = step(self.store, answer, self.clock(), policy, dispatching=False)
            await self._send(settled.emits, settled.deadletters)
            await self._persist(self.store.changes(settled, answer.site_uuid), True)
            leads.update(settled.leads)
            dnc.update(settled.dnc)
            site = settled.site if settled.site is not None else site
            emits += settled.emits
            deadletters += settled.deadletters
            counts += settled.counts
        kept = {call.attempt_id for call in late}
        return Step(
            leads=leads,
            site=site,
            dnc=dnc,
            calls=tuple(call for call in result.calls if call.attempt_id not in kept),
            emits=tuple(emits),
            deadletters=tuple(deadletters),
            counts=tuple(counts),
        )
