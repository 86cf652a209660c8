"""POST /webhooks/elevenlabs/initiation: ElevenLabs' pre-call webhook for inbound calls.

When a lead calls the agent's number back, ElevenLabs asks this route for the call's
dynamic variables, sending ``caller_id``, ``agent_id``, ``called_number`` and
``call_sid`` (section 1.4 of the API notes). ElevenLabs signs nothing here; it sends the
request headers configured on its side, so the route takes ``Authorization: Bearer
<secret>``, compared in constant time with every configured secret (rotation); anything
else is a 401, and with no secret configured the route answers 404, as if it did not exist.
The secrets are RGSYNC_ELEVENLABS_INITIATION_SECRETS, or, once the sites file gives sites
their own ``elevenlabs_initiation_secrets``, those: then a secret asks only about the sites
that list it, and a request whose called agent serves none of them is a 401 too
(``wrong_site``), so one site's secret never reads another site's callers
(``Sites.initiation_keys``).

The answer is read from this worker's caller directory (app/streaming/caller_directory.py:
no Kafka round trip, no other worker asked), so it stays within a few milliseconds: the
caller's lead context when the number is a lead's in a site the called agent serves (the
site's ``elevenlabs_agent_id`` in the sites file, else RGSYNC_ELEVENLABS_AGENT_ID),
else neutral defaults, always with the same variable names (app/domain/callers.py). What
was decided travels with the call: the answer's ``lead_id`` and ``site_uuid`` come back in
the post-call webhook's echoed variables, and when the request names the conversation,
its lead is also recorded on sync.conversations (after the answer, never delaying it).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from realgeeks_sync.app.core.errors import PayloadTooLargeError, RequestTimeoutError
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Secret, Settings
from realgeeks_sync.app.core.sites import SiteDirectory, Sites, normalize_site
from realgeeks_sync.app.domain.callers import (
    Scalar,
    answer_variables,
    choose,
    initiation_answer,
    neutral_variables,
    served_by,
)
from realgeeks_sync.app.domain.dialing.events import conversation_record
from realgeeks_sync.app.domain.dialing.optouts import e164_or_none
from realgeeks_sync.app.ingress.handlers import Publisher, read_body
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.caller_directory import (
    CallerDirectory,
    DirectoryReader,
    directory_path,
)

__all__ = [
    "MAX_INITIATION_BODY_BYTES",
    "Initiation",
    "allowed_sites",
    "bearer_checks",
    "bearer_matches",
    "initiation_for",
]

log = logging.getLogger(__name__)

MAX_INITIATION_BODY_BYTES = 64 * 1024  # four short fields
_BODY_TIMEOUT_S = 5.0


Keys = tuple[tuple[Secret, ...], tuple[frozenset[str] | None, ...]]


def bearer_checks(secrets: tuple[Secret, ...], header: str | None) -> tuple[bool, ...]:
    """For each secret, whether ``header`` is ``Bearer <it>``; every secret is compared in
    constant time, so the time taken tells nothing about which or how much matched."""
    scheme, _, supplied = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not supplied.strip():
        return (False,) * len(secrets)
    given = supplied.strip().encode("utf-8", "surrogateescape")
    return tuple(hmac.compare_digest(given, secret.reveal().encode("utf-8")) for secret in secrets)


def bearer_matches(secrets: tuple[Secret, ...], header: str | None) -> bool:
    """True when ``header`` is ``Bearer <one of the secrets>`` (each compared in constant time)."""
    return any(bearer_checks(secrets, header))


def allowed_sites(
    matched: tuple[bool, ...], owners: tuple[frozenset[str] | None, ...]
) -> frozenset[str] | None:
    """The sites the matching secrets may ask about; None: any site."""
    sites: set[str] = set()
    for hit, owner in zip(matched, owners, strict=True):
        if hit:
            if owner is None:
                return None
            sites |= owner
    return frozenset(sites)


class Initiation:
    """The pre-call webhook's handler, over this worker's caller directory."""

    def __init__(
        self,
        settings: Settings,
        directory: CallerDirectory | None,
        defaults: Mapping[str, Scalar],
        metrics: Metrics,
        *,
        publisher: Publisher | None = None,
        conversations_topic: str | None = None,
        sites: SiteDirectory | None = None,
    ) -> None:
        self.settings = settings
        # Which sites the called agent serves (sites file, reloaded on SIGHUP).
        self.sites = sites if sites is not None else SiteDirectory(settings)
        self.directory = directory
        self.defaults = dict(defaults)
        self.metrics = metrics
        self.publisher = publisher
        self.conversations_topic = conversations_topic
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys: tuple[Sites, Keys] | None = None  # the secrets of the sites in force

    def keys(self, sites: Sites) -> Keys:
        """The accepted secrets and the sites each may ask about, worked out once per
        version of the sites file (SIGHUP replaces it whole)."""
        if self._keys is None or self._keys[0] is not sites:
            self._keys = (sites, sites.initiation_keys())
        return self._keys[1]

    async def handle(self, request: web.Request) -> web.Response:
        """POST /webhooks/elevenlabs/initiation."""
        started = time.perf_counter()
        result, response = await self._answer(request)
        self.metrics.initiation_requests.labels(result).inc()
        self.metrics.initiation_seconds.observe(time.perf_counter() - started)
        return response

    async def _answer(self, request: web.Request) -> tuple[str, web.Response]:
        sites = self.sites.current  # one version for the whole request
        secrets, owners = self.keys(sites)
        if not secrets:
            return "disabled", _error(404, "the pre-call webhook is not configured")
        matched = bearer_checks(secrets, request.headers.get("Authorization"))
        if not any(matched):
            log.info("pre-call webhook refused: wrong or missing bearer secret")
            return "unauthorized", _unauthorized()
        allowed = allowed_sites(matched, owners)
        try:
            raw = await read_body(request, MAX_INITIATION_BODY_BYTES, timeout_s=_BODY_TIMEOUT_S)
        except (PayloadTooLargeError, RequestTimeoutError) as exc:
            return "bad_request", _error(exc.status, str(exc))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if not isinstance(body, dict):
            return "bad_request", _error(400, "the body is not a JSON object")
        agent = body.get("agent_id")
        served = served_by(sites, agent)
        if allowed is not None:
            # A site's own secret: only the sites listing it, and the called agent must
            # serve one of them; else it is another site's secret (same 401, no oracle).
            if not any(served(site) for site in allowed):
                log.info("pre-call webhook refused: a secret of another site's agent")
                return "wrong_site", _unauthorized()
            served = _within(served, allowed)
        number = e164_or_none(body.get("caller_id"), self.settings.default_region)
        found = self.directory.candidates(number) if number and self.directory else []
        chosen, count = choose(found, served)
        variables = answer_variables(self.defaults, chosen)
        if chosen is None:
            result = "unknown" if self.directory is None or self.directory.ready else "not_ready"
        else:
            result = "known" if count == 1 else "chosen"
            self._record(body.get("conversation_id"), chosen.site_uuid, chosen.lead_id)
        log.info(
            "pre-call webhook answered",
            extra={
                "result": result,
                "candidates": count,
                "site": chosen.site_uuid if chosen else None,
                "lead_id": chosen.lead_id if chosen else None,
            },
        )
        answer = json.dumps(initiation_answer(variables), separators=(",", ":"))
        return result, web.Response(text=answer, content_type="application/json")

    def _record(self, conversation_id: Any, site: str, lead: str) -> None:
        """Record the conversation's lead on sync.conversations, after the answer."""
        if not isinstance(conversation_id, str) or not conversation_id.strip():
            return
        if self.publisher is None or self.conversations_topic is None:
            return
        value = conversation_record(
            conversation_id=conversation_id.strip()[:200],
            site_uuid=site,
            lead_id=lead,
            direction="inbound",
            started_at=datetime.now(UTC).isoformat(),
        )
        task = asyncio.ensure_future(self._publish(value))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, value: dict[str, Any]) -> None:
        assert self.publisher is not None and self.conversations_topic is not None
        try:
            await self.publisher.publish(
                self.conversations_topic,
                value["conversation_id"],
                json.dumps(value, separators=(",", ":")).encode(),
            )
        except Exception:  # the echoed variables still place the call's outcome
            log.warning("inbound conversation not recorded", exc_info=True)


def initiation_for(
    settings: Settings,
    metrics: Metrics,
    publisher: Publisher | None,
    role: str,
    *,
    sites: SiteDirectory | None = None,
) -> tuple[Initiation, DirectoryReader]:
    """The pre-call webhook of one process (worker or standalone ingress) over a caller
    directory of its own, and the reader to start with it; ``sites``: the process's sites."""
    directory = CallerDirectory(directory_path(settings, role))
    reader = DirectoryReader(settings, directory, settings.topic(names.CALLERS))
    initiation = Initiation(
        settings,
        directory,
        neutral_variables(),
        metrics,
        publisher=publisher,
        conversations_topic=settings.topic(names.CONVERSATIONS),
        sites=sites,
    )
    return initiation, reader


def _within(served: Callable[[str], bool], allowed: frozenset[str]) -> Callable[[str], bool]:
    """``served``, narrowed to the ``allowed`` sites."""
    return lambda site: normalize_site(site) in allowed and served(site)


def _unauthorized() -> web.Response:
    return _error(401, "missing or wrong bearer secret", {"WWW-Authenticate": "Bearer"})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
