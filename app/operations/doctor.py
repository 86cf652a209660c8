"""``realgeeks-sync doctor``: is this configuration ready for its first lead?

Checks, each one line (``ok``, ``warn``, ``FAIL`` or ``SKIP``: not checked) naming what to fix:

* Kafka: reachable with these credentials; the topics there with RGSYNC_PARTITIONS
  partitions (missing ones are made at start-up: a warning).
* The clock against the Real Geeks API's Date header (signatures and the calling window need it),
  and the time zone data (the window needs the zones of every number).
* Each site (the sites file's, else the environment's): its Real Geeks login, by a cheap
  authenticated read (``GET /sites/{site}/users``; without a sites file the environment
  names no site, so RGSYNC_HEALTH_PROBE_SITE must, else the login is not checked); where
  the dialer is on or an agent is named, its ElevenLabs key, agent and phone number, by
  read-only calls (``GET /v1/convai/agents/{id}``, ``GET /v1/convai/phone-numbers/{id}``);
  where the dialer is on, a secret for the post-call webhooks (RGSYNC_ELEVENLABS_SECRETS).

Then it prints the webhook URLs to paste into Real Geeks and ElevenLabs and the dynamic
variables an agent's prompt can use. Exit 0: ready (warnings allowed); 1: something failed
or could not be checked.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp

from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClient
from realgeeks_sync.app.clients.realgeeks import RealGeeksClient
from realgeeks_sync.app.core.errors import ApiError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sites import SiteConfig, Sites, load_sites
from realgeeks_sync.app.domain.call_context import build_call_context
from realgeeks_sync.app.domain.calling_window import candidate_zones

__all__ = ["Check", "diagnose", "dynamic_variable_names", "kafka_checks", "report", "run_doctor"]

_SKEW_S = 60.0
_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    """One finding: ``ok``, ``warn``, ``FAIL`` or ``SKIP`` (not checked), and its subject."""

    level: str
    subject: str
    text: str

    def line(self) -> str:
        return f"{self.level:<5} {self.subject}: {self.text}"


def dynamic_variable_names() -> list[str]:
    """The variables every call carries (the call context's, and the dialer's attempt id)."""
    context = build_call_context(
        site_uuid="site",
        lead_id="lead",
        lead={"first_name": "Ana", "phone": "+18088172382", "role": "Buyer"},
        activities=[],
        do_not_call=False,
        now=datetime.now(UTC),
        event_id="doctor",
    )
    return sorted({*context["dynamic_variables"], "call_attempt_id"})


def kafka_checks(settings: Settings) -> list[Check]:
    """Kafka reachable with these settings, and its topics with RGSYNC_PARTITIONS partitions."""
    from realgeeks_sync.app.streaming.kafka_config import admin_client, list_topics_or_explain
    from realgeeks_sync.app.streaming.topics import topic_specs

    where = f"kafka {settings.bootstrap_servers}"
    try:
        admin, errors = admin_client(settings)
        metadata = list_topics_or_explain(settings, admin, errors, 8.0)
    except Exception as exc:  # noqa: BLE001 - one line naming what to fix
        return [Check("FAIL", where, f"not reachable: {exc} (RGSYNC_KAFKA_URL and its TLS/SASL)")]
    found = [Check("ok", where, f"answers ({len(metadata.brokers)} broker(s))")]
    missing, wrong = [], []
    for spec in topic_specs(settings):
        topic = metadata.topics.get(settings.topic(spec.name))
        if topic is None:
            missing.append(settings.topic(spec.name))
        elif len(topic.partitions) != spec.partitions:
            wrong.append(f"{settings.topic(spec.name)} has {len(topic.partitions)}")
    if wrong:
        found.append(
            Check(
                "FAIL",
                "kafka topics",
                f"RGSYNC_PARTITIONS is {settings.partitions} but " + "; ".join(wrong),
            )
        )
    elif missing:
        found.append(
            Check("warn", "kafka topics", f"{len(missing)} missing; the worker makes them at start")
        )
    else:
        found.append(Check("ok", "kafka topics", f"all there, {settings.partitions} partitions"))
    return found


def _zones(sites: Sites) -> list[Check]:
    try:
        ZoneInfo("America/New_York")
        zones = candidate_zones("+12125550123")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        return [Check("FAIL", "time zones", f"no time zone data ({exc}): install tzdata")]
    named = sorted({s.dialer.timezone for s in sites.by_uuid.values() if s.dialer.timezone})
    extra = f"; sites in {', '.join(named)}" if named else ""
    return [Check("ok", "time zones", f"loaded (+1 212 is in {zones[0]}){extra}")]


async def _clock(session: aiohttp.ClientSession, url: str, name: str, now: float) -> Check:
    try:
        async with session.head(url, timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S)) as resp:
            stamp = resp.headers.get("Date")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check("warn", "clock", f"cannot ask {name} for the time: {type(exc).__name__}")
    if not stamp:
        return Check("warn", "clock", f"{name} sent no Date header to compare with")
    skew = now - email.utils.parsedate_to_datetime(stamp).timestamp()
    if abs(skew) > _SKEW_S:
        return Check(
            "FAIL",
            "clock",
            f"{skew:+.0f} s from {name}'s: fix the system clock (NTP); signatures and the "
            "calling window depend on it",
        )
    return Check("ok", "clock", f"within {_SKEW_S:g} s of {name}'s ({skew:+.1f} s)")


def _label(site: SiteConfig) -> str:
    return "environment" if site.site_uuid == "*" else f"site {site.site_uuid}"


def _where(site: SiteConfig, name: str) -> str:
    if site.site_uuid == "*":
        return f"RGSYNC_{name.upper()}"
    return f"{name} of the site in the sites file (or RGSYNC_{name.upper()})"


async def _realgeeks(
    session: aiohttp.ClientSession, settings: Settings, site: SiteConfig, probe: str
) -> Check:
    subject = f"{_label(site)}: Real Geeks"
    if not site.realgeeks_api_user:
        return Check(
            "FAIL", subject, f"no API login: set {_where(site, 'realgeeks_api_user')} and password"
        )
    if not probe:
        # Every Real Geeks call names a site: without one the login cannot be tried, and a
        # login nobody tried must not let doctor say "ready".
        return Check(
            "SKIP",
            subject,
            "login not checked, no site to ask: set RGSYNC_HEALTH_PROBE_SITE "
            "(or list sites in RGSYNC_SITES_FILE)",
        )
    client = RealGeeksClient(
        session,
        settings.realgeeks_api_url,
        site.realgeeks_api_user,
        site.realgeeks_api_password.reveal(),
        timeout_s=_TIMEOUT_S,
    )
    try:
        users = await client.list_users(probe)
    except ApiError as exc:
        if exc.http_status in (401, 403):
            return Check(
                "FAIL",
                subject,
                f"login refused (HTTP {exc.http_status}): check "
                f"{_where(site, 'realgeeks_api_user')} and "
                f"{_where(site, 'realgeeks_api_password')}",
            )
        if exc.http_status == 404:
            return Check("FAIL", subject, f"site {probe} not found for this login (HTTP 404)")
        return Check("FAIL", subject, f"not reachable at {settings.realgeeks_api_url}: {exc}")
    return Check("ok", subject, f"login works ({len(users)} users on the site)")


async def _elevenlabs(
    session: aiohttp.ClientSession, settings: Settings, site: SiteConfig
) -> list[Check]:
    subject = f"{_label(site)}: ElevenLabs"
    if not site.dialer.enabled and not site.elevenlabs_agent_id:
        return [Check("ok", subject, "dialer off, no agent named: nothing to check")]
    found: list[Check] = []
    if site.dialer.enabled and not site.elevenlabs_secrets:
        found.append(
            Check(
                "FAIL",
                subject,
                f"no webhook secret: set {_where(site, 'elevenlabs_secrets')}; the post-call "
                "webhooks (each call's outcome) could not be verified",
            )
        )
    missing = [
        name
        for name, value in (
            ("elevenlabs_api_key", site.elevenlabs_api_key.reveal()),
            ("elevenlabs_agent_id", site.elevenlabs_agent_id),
            ("elevenlabs_phone_number_id", site.elevenlabs_phone_number_id),
        )
        if not value
    ]
    if missing:
        missing_text = "missing " + ", ".join(_where(site, m) for m in missing)
        return [*found, Check("FAIL", subject, missing_text)]
    client = ElevenLabsClient(
        session, settings.elevenlabs_api_url, site.elevenlabs_api_key.reveal(), timeout_s=_TIMEOUT_S
    )
    for what, name, read in (
        ("agent", "elevenlabs_agent_id", lambda: client.get_agent(site.elevenlabs_agent_id)),
        (
            "phone number",
            "elevenlabs_phone_number_id",
            lambda: client.get_phone_number(site.elevenlabs_phone_number_id),
        ),
    ):
        found.append(await _read_one(subject, what, name, site, read))
        if found[-1].level == "FAIL" and "key" in found[-1].text:
            break  # a wrong key fails every read: once is enough
    return found


async def _read_one(
    subject: str, what: str, name: str, site: SiteConfig, read: Callable[[], Any]
) -> Check:
    try:
        await read()
    except ApiError as exc:
        if exc.http_status == 401:
            return Check(
                "FAIL",
                subject,
                f"API key refused (HTTP 401): check {_where(site, 'elevenlabs_api_key')}",
            )
        if exc.http_status == 404:
            return Check("FAIL", subject, f"no such {what}: check {_where(site, name)}")
        return Check("FAIL", subject, f"cannot read the {what}: {exc}")
    return Check("ok", subject, f"key works, {what} found")


async def diagnose(
    settings: Settings,
    sites: Sites,
    *,
    clock: Callable[[], float] = time.time,
    kafka: Callable[[Settings], list[Check]] = kafka_checks,
) -> list[Check]:
    """Every check, in the order printed; ``clock`` is the system clock under test."""
    found = await asyncio.to_thread(kafka, settings)
    found += _zones(sites)
    listed = list(sites.by_uuid.values()) if sites.listed else [sites.default]
    async with aiohttp.ClientSession() as session:
        now = clock()
        found.append(await _clock(session, settings.realgeeks_api_url, "Real Geeks", now))
        for site in listed:
            probe = site.site_uuid if site.site_uuid != "*" else settings.health_probe_site
            found.append(await _realgeeks(session, settings, site, probe))
            found += await _elevenlabs(session, settings, site)
    return found


def run_doctor(settings: Settings, out: Callable[[str], None] = print) -> int:
    """Run every check, print them and what to paste where; 0 when ready, 1 otherwise."""
    sites = load_sites(settings)
    return report(settings, sites, asyncio.run(diagnose(settings, sites)), out)


def report(settings: Settings, sites: Sites, found: list[Check], out: Callable[[str], None]) -> int:
    """Print the findings, the webhook URLs and the variables; 0 when ready, 1 otherwise."""
    for check in found:
        out(check.line())
    base = settings.public_url or f"http://{_host(settings.web_host)}:{settings.web_port}"
    out("")
    out("Webhook URLs (RGSYNC_PUBLIC_URL sets the address):")
    out(f"  Real Geeks (Custom API destination, each site's own secret): {base}/webhooks/realgeeks")
    out(
        f"  ElevenLabs post-call webhook (transcript, call initiation failure): "
        f"{base}/webhooks/elevenlabs"
    )
    out(
        "  ElevenLabs conversation initiation (inbound calls): "
        f"{base}/webhooks/elevenlabs/initiation"
    )
    if sites.listed:
        out(f"  sites: {', '.join(f'{s.site_uuid} ({s.name})' for s in sites.by_uuid.values())}")
    out("")
    out("Dynamic variables an agent's prompt can use ({{name}}):")
    try:
        out("  " + ", ".join(dynamic_variable_names()))
    except (ZoneInfoNotFoundError, ValueError):  # a call's context needs the zones
        out("  (listed once the time zone data is there)")
    failed = sum(c.level == "FAIL" for c in found)
    unchecked = sum(c.level == "SKIP" for c in found)
    out("")
    if failed:
        out(f"not ready: {failed} problem(s) above")
    elif unchecked:
        out(f"not ready: {unchecked} check(s) could not be made (SKIP above)")
    else:
        out("ready")
    return 0 if not failed and not unchecked else 1


def _host(bind: str) -> str:
    return "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind
