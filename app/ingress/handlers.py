"""The webhook ingress: verify, keep on a raw topic, answer only after Kafka has it.

Plain aiohttp handlers, so the same code serves inside the Faust worker (app/operations/routes.py)
and standalone (benchmarks, the broker-outage tests). The order of checks is deliberate:
rate limit (cheap, stops floods), size, signature over the raw bytes, then parsing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import web

from realgeeks_sync.app.core.errors import (
    IngressBusyError,
    PayloadTooLargeError,
    PublishError,
    RateLimitedError,
    RequestTimeoutError,
    SignatureError,
    UnknownSiteError,
    WebhookError,
    WrongSiteSecretError,
)
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.rate_limit import KeyedRateLimiter
from realgeeks_sync.app.core.settings import Secret, Settings
from realgeeks_sync.app.core.sites import SiteDirectory, normalize_site
from realgeeks_sync.app.domain.envelopes import (
    ELEVENLABS_KEPT_TYPES,
    ELEVENLABS_SKIPPED_TYPES,
    KNOWN_REALGEEKS_ACTIONS,
    RawRecord,
    elevenlabs_record,
    realgeeks_record,
)
from realgeeks_sync.app.ingress.pending_bodies import BodyHold, PendingBodies
from realgeeks_sync.app.ingress.signatures import (
    matching_macs,
    parse_elevenlabs,
    parse_realgeeks,
)
from realgeeks_sync.app.streaming.topics import RAW_ELEVENLABS, RAW_REALGEEKS

__all__ = ["Ingress", "Publisher", "standalone_app"]

log = logging.getLogger(__name__)

_KNOWN_ACTIONS = KNOWN_REALGEEKS_ACTIONS | ELEVENLABS_KEPT_TYPES


# Bodies from this size on are hashed on a worker thread (hashlib releases the GIL), so a
# 16 MiB body does not stall the event loop (and, in the worker, the agents) for its HMACs.
HASH_OFF_LOOP_BYTES = 64 * 1024


class Publisher(Protocol):
    """Anything that writes a record and returns once Kafka acknowledged it."""

    async def publish(self, topic: str, key: str, value: bytes) -> None: ...


def _check_declared_size(declared: int | None, limit: int) -> None:
    """Refuse a declared Content-Length (``request.content_length``) over ``limit``."""
    if declared is not None and declared > limit:
        raise PayloadTooLargeError(f"body over {limit} bytes")


async def _check_mac(
    secrets: Sequence[Secret], parts: Sequence[bytes], signatures: Sequence[str]
) -> tuple[bool, ...]:
    """matching_macs, on a worker thread when the body is large; which secrets signed.

    Raises:
        SignatureError: none did.
    """
    if sum(len(p) for p in parts) >= HASH_OFF_LOOP_BYTES:
        found = await asyncio.to_thread(matching_macs, secrets, parts, signatures)
    else:
        found = matching_macs(secrets, parts, signatures)
    if not any(found):
        raise SignatureError("signature does not match")
    return found


Keys = tuple[tuple[Secret, ...], tuple[frozenset[str] | None, ...]]


def _check_signer(
    found: Sequence[bool], owners: Sequence[frozenset[str] | None], subject: str
) -> None:
    """The body's site (or agent) must be one a secret that signed it may sign for.

    Raises:
        WrongSiteSecretError: only secrets of other sites made the signature.
    """
    for matched, allowed in zip(found, owners, strict=True):
        if matched and (allowed is None or subject in allowed):
            return
    raise WrongSiteSecretError("signed with a secret of another site")


async def read_body(
    request: web.Request,
    limit: int,
    *,
    hold: BodyHold | None = None,
    timeout_s: float | None = None,
) -> bytes:
    """Read the raw body once, refusing more than ``limit`` bytes without buffering it all.

    With a ``hold``, the bytes count against the shared budget of unauthenticated bodies
    (the declared length at once, else chunk by chunk); with ``timeout_s``, the whole body
    must arrive within it.

    Raises:
        PayloadTooLargeError: the declared or actual size is over the limit.
        IngressBusyError: the budget of bodies in flight is spent.
        RequestTimeoutError: the body did not arrive in time.
    """
    declared = request.content_length
    _check_declared_size(declared, limit)
    whole = _body_if_here(request, declared, limit, hold)
    if whole is not None:
        return whole
    return await _read_rest(request, limit, hold, timeout_s)


def _body_if_here(
    request: web.Request, declared: int | None, limit: int, hold: BodyHold | None
) -> bytes | None:
    """read_body once the declared size passed its check: the body if all of it is here
    (a webhook usually comes in one segment, so no timer is needed), else None."""
    if hold is not None and declared:
        hold.grow_to(declared)
    if request.content.is_eof():
        whole = request.content.read_nowait()
        _count_body(len(whole), limit, hold)
        return whole
    return None


async def _read_rest(
    request: web.Request, limit: int, hold: BodyHold | None, timeout_s: float | None
) -> bytes:
    """read_body for a body still arriving: chunk by chunk, within ``timeout_s``."""
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.read(64 * 1024):
                body += chunk
                _count_body(len(body), limit, hold)
    except TimeoutError:
        raise RequestTimeoutError(f"body not received within {timeout_s:g} s") from None
    return bytes(body)


def _count_body(size: int, limit: int, hold: BodyHold | None) -> None:
    """Refuse a body grown past ``limit``; else count its ``size`` bytes against ``hold``."""
    if size > limit:
        raise PayloadTooLargeError(f"body over {limit} bytes")
    if hold is not None:
        hold.grow_to(size)


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class Ingress:
    """Handlers for POST /webhooks/realgeeks and POST /webhooks/elevenlabs."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        metrics: Metrics,
        *,
        limiter: KeyedRateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        received_clock: Callable[[], float] | None = None,
        sites: SiteDirectory | None = None,
    ) -> None:
        self.settings = settings
        # Per-site secrets (app/core/sites.py); None: the environment's, for every site.
        self.sites = sites
        self._keys: dict[str, tuple[int, Keys]] = {}
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock
        # Receipt times (a lead's age for the dialer) follow RGSYNC_CLOCK_FILE in drills;
        # signature tolerances keep the real clock.
        self.received_clock = received_clock or clock
        self._second: tuple[float, str] = (math.nan, "")  # _received_at's last second, written
        self.limiter = limiter or KeyedRateLimiter(
            settings.client_rate_per_s, settings.client_burst
        )
        # Label children bound once: labels() on every request is measurable.
        self._last_webhook = {
            src: metrics.last_webhook.labels(src) for src in ("realgeeks", "elevenlabs")
        }
        self._ingest_seconds = {
            src: metrics.ingest_seconds.labels(src) for src in ("realgeeks", "elevenlabs")
        }
        self._received_counters = {
            (src, action): metrics.webhooks_received.labels(src, action)
            for src in ("realgeeks", "elevenlabs")
            for action in (*_KNOWN_ACTIONS, "other")
        }
        self.pending = PendingBodies(
            settings.max_pending_body_bytes, retry_after_s=settings.retry_after_s
        )
        self.raw_realgeeks = settings.topic(RAW_REALGEEKS)
        self.raw_elevenlabs = settings.topic(RAW_ELEVENLABS)

    def client_key(self, request: web.Request) -> str:
        """Who is sending: the peer address, or the first X-Forwarded-For hop behind a proxy."""
        if self.settings.trust_forwarded_for:
            forwarded = request.headers.get("X-Forwarded-For", "")
            first = forwarded.split(",", 1)[0].strip()
            if first:
                return first
        return request.remote or "unknown"

    def keys(self, source: str) -> Keys:
        """The secrets that may sign ``source``'s webhooks and what each may sign for."""
        if self.sites is None:
            plain = (
                self.settings.realgeeks_secrets
                if source == "realgeeks"
                else self.settings.elevenlabs_secrets
            )
            return plain, (None,) * len(plain)
        cached = self._keys.get(source)
        if cached is None or cached[0] != self.sites.version:  # reloaded (SIGHUP)
            current = self.sites.current
            keys = current.realgeeks_keys() if source == "realgeeks" else current.elevenlabs_keys()
            cached = self._keys[source] = (self.sites.version, keys)
        return cached[1]

    def _check_site(self, record: RawRecord, found: Sequence[bool], owners: Keys) -> None:
        """With a sites file: a listed site, signed by one of its own secrets.

        Raises:
            UnknownSiteError: the body names no site, or one the file does not list.
            WrongSiteSecretError: signed with another site's secret.
        """
        if self.sites is None or not self.sites.current.listed:
            return
        site = normalize_site(record.subject or "")
        if not site or self.sites.current.get(site) is None:
            self.metrics.unknown_sites.inc()
            raise UnknownSiteError(
                "unknown site: add it to the sites file" if site else "no site_uuid in the body"
            )
        _check_signer(found, owners[1], site)

    def _received_at(self) -> str:
        """datetime.fromtimestamp(now, UTC).isoformat() with "Z" for "+00:00", its rounding
        of the microseconds included; the date and time are written once a second (0.7 us
        a webhook)."""
        fraction, whole = math.modf(self.received_clock())
        micro = round(fraction * 1e6)  # half to even, as datetime rounds
        if micro >= 1_000_000:
            whole, micro = whole + 1, micro - 1_000_000
        elif micro < 0:
            whole, micro = whole - 1, micro + 1_000_000
        if whole != self._second[0]:
            self._second = (whole, datetime.fromtimestamp(whole, UTC).isoformat()[:19])
        text = self._second[1]
        return f"{text}.{micro:06d}Z" if micro else text + "Z"

    async def realgeeks(self, request: web.Request) -> web.Response:
        """POST /webhooks/realgeeks."""
        return await self._handle(request, "realgeeks")

    async def elevenlabs(self, request: web.Request) -> web.Response:
        """POST /webhooks/elevenlabs."""
        if not self.keys("elevenlabs")[0]:
            self.metrics.webhooks_rejected.labels("elevenlabs", "503").inc()
            return _json_error(
                503, "ElevenLabs webhooks are not configured (RGSYNC_ELEVENLABS_SECRETS)"
            )
        return await self._handle(request, "elevenlabs")

    async def _handle(self, request: web.Request, source: str) -> web.Response:
        started = time.perf_counter()
        try:
            record = await self._accept(request, source)
        except WebhookError as exc:
            return self._refuse(source, exc)
        except PublishError as exc:
            self.metrics.webhooks_rejected.labels(source, "503").inc()
            self.metrics.sync_errors.labels(exc.error_type).inc()
            log.warning(
                "webhook not acknowledged by Kafka", extra={"source": source, "reason": str(exc)}
            )
            return _json_error(
                503,
                "temporarily unavailable, retry later",
                {"Retry-After": str(self.settings.retry_after_s)},
            )
        if record is None:  # signed and valid, but a type we do not keep (post_call_audio)
            return web.json_response({"status": "ignored"})
        # A sender can put any string in the action: only known ones become label values.
        action = record.action if record.action in _KNOWN_ACTIONS else "other"
        self._received_counters[source, action].inc()
        self._last_webhook[source].set(self.clock())
        self._ingest_seconds[source].observe(time.perf_counter() - started)
        # DEBUG: one line per accepted webhook cost a sixth of the handler's CPU; counts
        # are in the metrics, refusals are logged at INFO. Not even its fields are built
        # unless DEBUG is on.
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "webhook accepted",
                extra={
                    "source": source,
                    "message_id": record.message_id,
                    "site": record.key,
                    "action": record.action,
                },
            )
        # Built by hand: json_response's generic path was a tenth of the handler's CPU.
        return web.Response(
            body=b'{"status":"accepted","message_id":'
            + json.dumps(record.message_id).encode("utf-8")
            + b"}",
            content_type="application/json",
        )

    async def _accept(self, request: web.Request, source: str) -> RawRecord | None:
        wait = self.limiter.try_acquire(self.client_key(request))
        if wait > 0:
            raise RateLimitedError("too many requests", retry_after=wait)
        # The header's shape (and ElevenLabs' timestamp) is checked before the body is
        # read: a malformed or stale signature costs neither buffering nor hashing.
        if source == "realgeeks":
            limit = self.settings.max_body_bytes
            declared = request.content_length  # a property that parses: read it once
            _check_declared_size(declared, limit)
            signature = parse_realgeeks(request.headers.get("X-Lead-Router-Signature"))
            keys = self.keys(source)
            with self.pending.hold() as hold:
                body = await self._read(request, declared, limit, hold)
                found = await _check_mac(keys[0], (body,), [signature])
            record = realgeeks_record(
                body,
                request.headers,
                self._received_at(),
                max_timestamp_skew_s=self.settings.timestamp_max_skew_s,
            )
            self._check_site(record, found, keys)
            if record.timestamp_clamped:
                self.metrics.future_timestamps.labels(source).inc()
                log.info(
                    "webhook timestamp in the future; receipt time used",
                    extra={"source": source, "message_id": record.message_id},
                )
            topic = self.raw_realgeeks
        else:
            limit = self.settings.elevenlabs_max_body_bytes
            declared = request.content_length
            _check_declared_size(declared, limit)
            parsed = parse_elevenlabs(
                request.headers.get("ElevenLabs-Signature"),
                now=self.clock(),
                tolerance_s=self.settings.elevenlabs_tolerance_s,
                future_tolerance_s=self.settings.elevenlabs_future_tolerance_s,
            )
            keys = self.keys(source)
            with self.pending.hold() as hold:
                body = await self._read(request, declared, limit, hold)
                found = await _check_mac(keys[0], parsed.parts(body), parsed.signatures)
            record = elevenlabs_record(body, request.headers, self._received_at())
            if any(owner is not None for owner in keys[1]):
                # A site with an ElevenLabs workspace of its own: its secret signs its agent.
                _check_signer(found, keys[1], record.subject or "")
            if record.action in ELEVENLABS_SKIPPED_TYPES:
                return None
            if len(body) > self.settings.max_body_bytes:
                raise PayloadTooLargeError(f"body over {self.settings.max_body_bytes} bytes")
            topic = self.raw_elevenlabs
        await self.publisher.publish(topic, record.key, record.value())
        return record

    async def _read(
        self, request: web.Request, declared: int | None, limit: int, hold: BodyHold
    ) -> bytes:
        """read_body, the declared size already checked by the caller."""
        body = _body_if_here(request, declared, limit, hold)
        if body is None:
            body = await _read_rest(request, limit, hold, self.settings.body_read_timeout_s)
        return body

    def _refuse(self, source: str, exc: WebhookError) -> web.Response:
        self.metrics.webhooks_rejected.labels(source, str(exc.status)).inc()
        headers: dict[str, str] = {}
        if isinstance(exc, SignatureError):
            self.metrics.signature_failures.labels(source).inc()
        if isinstance(exc, (RateLimitedError, IngressBusyError)):
            headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
        log.info(
            "webhook refused", extra={"source": source, "status": exc.status, "reason": str(exc)}
        )
        return _json_error(exc.status, str(exc), headers)


def standalone_app(ingress: Ingress) -> web.Application:
    """An aiohttp app serving only the ingress (benchmarks, outage tests, an edge tier)."""
    # client_max_size above our own limits: read_body enforces them with a proper 413.
    app = web.Application(client_max_size=ingress.settings.elevenlabs_max_body_bytes + 1)
    app.router.add_post("/webhooks/realgeeks", ingress.realgeeks)
    app.router.add_post("/webhooks/elevenlabs", ingress.elevenlabs)
    return app
