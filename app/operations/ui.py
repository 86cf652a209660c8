"""The /ui/ pages: dashboard, a lead's story, search, the dialer's switches, and login.

Served by every worker. A lead's page is answered by the worker that holds its site's
partition (``answer_at_owner``, signed forwarding like /tables/*); the dashboard and the
search ask every worker of the group for the sites it holds (``/ui/internal/*``, signed
only: no token, no cookie) and merge. Operator actions become records on
sync.dialer-events (app/domain/dialing/events.py ``OperatorAction``) with who and when; the
dialer applies them in its stream; a pause or resume of every site is one record (site "*")
written to every partition, so each partition's dialer holds every site, seen or not.
Without the admin token (bearer header, or the login cookie of app/operations/ui_auth.py)
every page answers with the login form and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from faust.types import TP
from faust.web import View
from yarl import URL

from realgeeks_sync.app.domain.dialing import OperatorAction, operator_record
from realgeeks_sync.app.domain.dialing.records import (
    ALL_SITES,
    SiteRecord,
    all_sites_key,
    is_all_sites,
)
from realgeeks_sync.app.domain.dialing.store import DialerStore
from realgeeks_sync.app.domain.events import derive_event_id
from realgeeks_sync.app.domain.normalize import normalize_lead_id, normalize_site_uuid
from realgeeks_sync.app.domain.story import site_day_key, story_key
from realgeeks_sync.app.operations.inspection import answer_at_owner
from realgeeks_sync.app.operations.internal_auth import (
    SIGNATURE_HEADER,
    forwarding_key,
    sign_forwarded,
    verify_forwarded,
)
from realgeeks_sync.app.operations.lookups import find_lead, lookup_identity
from realgeeks_sync.app.operations.ui_auth import (
    COOKIE,
    SESSION_S,
    Session,
    check_token,
    csrf_token,
    make_session,
    ui_session,
)
from realgeeks_sync.app.operations.ui_pages import (
    dashboard_page,
    lead_page,
    login_page,
    search_page,
)
from realgeeks_sync.app.streaming.partitioning import site_partition
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register_ui"]

log = logging.getLogger(__name__)

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_MAX_RESULTS = 50


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=_HEADERS)


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **_HEADERS})


def _safe_next(value: str) -> str:
    """Only a path of these pages: a login never sends anyone elsewhere."""
    return value if value.startswith("/ui/") and not value.startswith("//") else "/ui/"


class _Ui:
    """What the pages need: the pipeline, who this worker is, and the gathering of data."""

    def __init__(self, p: Pipeline) -> None:
        self.p = p
        self.me = str(p.app.conf.canonical_url).rstrip("/")
        self.key = forwarding_key(p.settings.internal_secret, p.settings.admin_token)
        self.store = DialerStore(
            p.tables.dialer_leads,
            p.tables.dialer_sites,
            p.tables.do_not_call,
            partition_of=lambda site: site_partition(site, p.settings.partitions),
        )

    # -- who is asking ------------------------------------------------------------------

    def session(self, request: Any) -> Session | None:
        return ui_session(self.p.settings, request)

    def login(self, request: Any) -> web.Response:
        if self.p.settings.admin_token is None:
            return _html(login_page("The pages are off: set RGSYNC_ADMIN_TOKEN."), status=404)
        target = "/ui/login?" + urlencode({"next": _safe_next(request.path_qs)})
        return _see(target)

    def csrf_ok(self, session: Session, form: Any) -> bool:
        if session.cookie is None:
            return True  # the bearer header: a script, not a browser
        return str(form.get("csrf", "")) == csrf_token(self.p.settings, session.cookie)

    def signed(self, request: Any) -> bool:
        return (
            SIGNATURE_HEADER in request.headers
            and self.p.settings.admin_token is not None
            and verify_forwarded(
                self.key, request.headers, request.method, request.raw_path, time.time()
            )
        )

    # -- the sites this worker holds -----------------------------------------------------

    def holds(self, site_uuid: str) -> bool:
        return self.holds_partition(site_partition(site_uuid, self.p.settings.partitions))

    def holds_partition(self, partition: int) -> bool:
        table = self.p.tables.site_days
        tp = TP(table.changelog_topic.get_topic_name(), partition)
        try:
            return tp in self.p.app.assignor.assigned_actives()
        except Exception:  # noqa: BLE001 - not assigned yet
            return False

    def known_sites(self) -> set[str]:
        """Sites of the sites file and every site the dialer or the figures know here."""
        sites = set(self.p.sites.current.known()) if self.p.sites is not None else set()
        sites |= {str(k).split("|", 1)[0] for k in list(self.p.tables.site_days.keys())}
        sites |= {str(k) for k in list(self.p.tables.dialer_sites.keys())}
        return {s for s in sites if s and not is_all_sites(s)}

    def local_summaries(self) -> list[dict[str, Any]]:
        """Each site this worker holds, then each partition's switch for every site it holds
        (``switch: all_sites``): the dashboard tells how many partitions apply a pause of all."""
        now = datetime.fromtimestamp(self.p.clock(), UTC)
        out = []
        for site in sorted(self.known_sites()):
            if not self.holds(site):
                continue
            config = self.p.sites.current.config(site) if self.p.sites is not None else None
            zone = config.dialer.timezone if config is not None else None
            day = self.p.tables.site_days.get(site_day_key(site, now, zone))
            day = dict(day) if isinstance(day, dict) else {}
            record = self.store.site(site) or SiteRecord(site)
            everywhere = self.store.all_sites(site)
            out.append(
                {
                    "site_uuid": site,
                    "name": config.name if config and config.site_uuid != "*" else site,
                    "enabled": config.dialer.enabled if config else True,
                    "paused": record.paused,
                    "paused_all": everywhere.paused if everywhere else None,
                    "waiting": len(record.waiting),
                    "in_flight": len(record.in_flight),
                    "speed": day.pop("speed", []),
                    "day": day,
                }
            )
        for partition in range(self.p.settings.partitions):
            if self.holds_partition(partition):
                switch = self.store.site(all_sites_key(partition))
                out.append(
                    {
                        "switch": "all_sites",
                        "partition": partition,
                        "paused": switch.paused if switch else None,
                    }
                )
        return out

    def local_search(self, query: str) -> list[dict[str, Any]]:
        t = self.p.tables
        query = query.strip()
        found: list[dict[str, Any]] = []
        for site in sorted(self.known_sites()):
            if not self.holds(site):
                continue
            leads: list[tuple[str, str]] = []
            if "@" in query:
                hit = lookup_identity(
                    t.identity_index, site, email=query, phone=None, region=self._region()
                )
                leads = [(x, "email") for x in (hit or {}).get("leads", [])]
            elif sum(c.isdigit() for c in query) >= 7 and not _looks_like_id(query):
                hit = lookup_identity(
                    t.identity_index, site, email=None, phone=query, region=self._region()
                )
                leads = [(x, "phone") for x in (hit or {}).get("leads", [])]
            if not leads and "@" not in query:
                # Not a known number (ids have digits too): the Real Geeks id.
                lead = find_lead(t.identity_index, t.lead_snapshots, site, query)
                leads = [(lead["lead_id"], "Real Geeks id")] if lead else []
            for lead_id, how in leads:
                snapshot = find_lead(t.identity_index, t.lead_snapshots, site, lead_id)
                fields = ((snapshot or {}).get("lead") or {}).get("fields") or {}
                name = " ".join(str(fields.get(k) or "") for k in ("first_name", "last_name"))
                config = self.p.sites.current.get(site) if self.p.sites is not None else None
                found.append(
                    {
                        "site_uuid": site,
                        "site_name": config.name if config and config.site_uuid != "*" else site,
                        "lead_id": lead_id,
                        "name": name.strip() or lead_id,
                        "match": how,
                    }
                )
        return found[:_MAX_RESULTS]

    def _region(self) -> str:
        return self.p.settings.default_region

    # -- every worker ------------------------------------------------------------------

    def peers(self) -> set[str]:
        urls = getattr(self.p.app.assignor, "_tps_url", {}).values()
        return {str(u).rstrip("/") for u in urls if u} - {self.me}

    async def gather(self, path_qs: str, local: Callable[[], list[dict[str, Any]]]) -> list[Any]:
        """``local()`` here, and the same from every other worker (signed requests)."""
        results: list[Any] = list(local())
        if self.key is None:
            return results
        peers = sorted(self.peers())
        if not peers:
            return results
        async with aiohttp.ClientSession() as session:
            answers = await asyncio.gather(
                *(self._ask(session, peer, path_qs) for peer in peers), return_exceptions=True
            )
        for answer in answers:
            if isinstance(answer, list):
                results.extend(answer)
        return results

    async def _ask(self, session: aiohttp.ClientSession, peer: str, path_qs: str) -> Any:
        assert self.key is not None
        headers = sign_forwarded(self.key, "GET", path_qs, self.me, time.time())
        try:
            async with session.get(
                URL(peer + path_qs, encoded=True),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=5),
                allow_redirects=False,
            ) as resp:
                if resp.status != 200:
                    return None
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            log.warning("a worker did not answer the dashboard", extra={"peer": peer})
            return None

    # -- a lead ---------------------------------------------------------------------------

    def lead_data(self, site: str, lead_id: str) -> dict[str, Any] | None:
        t = self.p.tables
        found = find_lead(t.identity_index, t.lead_snapshots, site, lead_id)
        lead = found["lead_id"] if found else (normalize_lead_id(lead_id) or lead_id)
        story = t.lead_stories.get(story_key(site, lead))
        entries = story.get("entries", []) if isinstance(story, dict) else []
        record = self.store.lead(site, lead)
        if found is None and not entries and record is None:
            return None
        outbox = {}
        for entry in entries:
            detail = entry.get("detail") or {}
            # The outbox holds activities by activity_id, lead-field updates by update_id.
            write_id = detail.get("activity_id") or detail.get("update_id")
            if entry.get("kind") == "writeback" and write_id:
                state = t.activity_outbox.get(write_id)
                if isinstance(state, dict):
                    outbox[write_id] = state
        phones = record.phones if record is not None else ()
        lead_entry = self.store.dnc(site, "lead", lead)
        config = self.p.sites.current.get(site) if self.p.sites is not None else None
        return {
            "site_uuid": site,
            "site_name": config.name if config and config.site_uuid != "*" else site,
            "lead_id": lead,
            "snapshot": (found or {}).get("lead"),
            "dialer": record.to_json() if record is not None else None,
            "do_not_call": {
                "lead": lead_entry.to_json() if lead_entry else None,
                "phones": [n for n in phones if self.store.dnc(site, "phone", n) is not None],
            },
            "story": entries,
            "outbox": outbox,
        }

    # -- operator actions ---------------------------------------------------------------

    async def act(self, sites: Iterable[str], action: str, by: str, lead: str | None) -> int:
        now = datetime.fromtimestamp(time.time(), UTC).isoformat()
        records = []
        for site in sites:
            event_id = derive_event_id(f"operator\x1f{site}\x1f{lead}\x1f{action}\x1f{now}")
            value = operator_record(
                OperatorAction(site, action, by[:120], now, lead, event_id)  # type: ignore[arg-type]
            )
            key = f"{site}:{lead}" if lead else site
            records.append((self.p.topics.dialer_events, key, value))
        if records:
            await self.p.write(records, what="operator action")
        log.info(
            "operator action", extra={"action": action, "sites": len(records), "lead_id": lead}
        )
        return len(records)

    async def act_on_every_site(self, action: str, by: str) -> int:
        """Pause or resume every site: one record (site "*") on every partition, so sites
        not seen yet and sites of a worker that does not answer are held too; returns the
        number of partitions written."""
        now = datetime.fromtimestamp(time.time(), UTC).isoformat()
        event_id = derive_event_id(f"operator\x1f{ALL_SITES}\x1f{action}\x1f{now}")
        value = operator_record(
            OperatorAction(ALL_SITES, action, by[:120], now, None, event_id)  # type: ignore[arg-type]
        )
        partitions = await self.p.write_to_every_partition(
            self.p.topics.dialer_events, ALL_SITES, value, what="operator action"
        )
        log.info("operator action", extra={"action": action, "sites": ALL_SITES})
        return partitions


def _looks_like_id(text: str) -> bool:
    bare = text.replace("-", "").strip().lower()
    return len(bare) >= 16 and all(c in "0123456789abcdef" for c in bare)


def register_ui(p: Pipeline) -> None:
    """Mount /ui/ (dashboard), /ui/login, /ui/logout, /ui/leads/..., /ui/search, /ui/dialer."""
    ui = _Ui(p)
    app = p.app
    settings = p.settings

    async def page(
        request: Any, render: Callable[[Session], Awaitable[web.Response]]
    ) -> web.Response:
        session = ui.session(request)
        if session is None:
            return ui.login(request)
        return await render(session)

    @app.page("/ui/")
    class Dashboard(View):
        async def get(self, request: Any) -> Any:
            async def render(session: Session) -> web.Response:
                entries = await ui.gather("/ui/internal/summary", ui.local_summaries)
                sites = [e for e in entries if "site_uuid" in e]
                sites.sort(key=lambda s: str(s.get("name") or s.get("site_uuid")))
                switches = [e for e in entries if e.get("switch") == "all_sites"]
                csrf = csrf_token(settings, session.cookie or "")
                now = datetime.fromtimestamp(p.clock(), UTC)
                return _html(
                    dashboard_page(
                        sites,
                        csrf,
                        session.name,
                        now,
                        all_sites=switches,
                        partitions=settings.partitions,
                    )
                )

            return await page(request, render)

    @app.page("/ui/login")
    class Login(View):
        async def get(self, request: Any) -> Any:
            if settings.admin_token is None:
                return _html(login_page("The pages are off: set RGSYNC_ADMIN_TOKEN."), 404)
            return _html(login_page(None, _safe_next(request.query.get("next", "/ui/"))))

        async def post(self, request: Any) -> Any:
            form = await request.post()
            target = _safe_next(str(form.get("next", "/ui/")))
            if not check_token(settings, str(form.get("token", ""))):
                p.metrics.ui_logins.labels("refused").inc()
                return _html(login_page("That is not the admin token.", target), status=401)
            p.metrics.ui_logins.labels("accepted").inc()
            response = _see(target)
            response.set_cookie(
                COOKIE,
                make_session(settings, str(form.get("name", ""))),
                max_age=SESSION_S,
                path="/ui/",
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )
            return response

    @app.page("/ui/logout")
    class Logout(View):
        async def post(self, request: Any) -> Any:
            response = _see("/ui/login")
            response.del_cookie(COOKIE, path="/ui/")
            return response

    @app.page("/ui/search")
    class Search(View):
        async def get(self, request: Any) -> Any:
            async def render(session: Session) -> web.Response:
                query = request.query.get("q", "").strip()[:200]
                results = []
                if query:
                    path = "/ui/internal/search?" + urlencode({"q": query})
                    results = await ui.gather(path, lambda: ui.local_search(query))
                if len(results) == 1:
                    found = results[0]
                    return _see(f"/ui/leads/{found['site_uuid']}/{found['lead_id']}")
                return _html(search_page(query, results, session.name))

            return await page(request, render)

    @app.page("/ui/leads/{site_uuid}/{lead_id}")
    class Lead(View):
        async def get(self, request: Any, site_uuid: str, lead_id: str) -> Any:
            site = normalize_site_uuid(site_uuid) or site_uuid
            session = ui.session(request)
            forwarded = ui.signed(request)

            async def local() -> web.Response:
                data = ui.lead_data(site, lead_id)
                name = session.name if session else request.query.get("who", "admin")
                csrf = (
                    csrf_token(settings, session.cookie or "")
                    if session
                    else request.query.get("csrf", "")
                )
                if data is None:
                    return _html(search_page(lead_id, [], name), status=404)
                return _html(lead_page(data, csrf, name))

            if forwarded:
                return await local()
            if session is None:
                return ui.login(request)
            return await answer_at_owner(
                p,
                request,
                site,
                p.tables.lead_stories,
                local,
                allowed=lambda _r: True,
                forward_query=urlencode(
                    {"csrf": csrf_token(settings, session.cookie or ""), "who": session.name}
                ),
            )

    @app.page("/ui/leads/{site_uuid}/{lead_id}/dialer")
    class LeadDialer(View):
        async def post(self, request: Any, site_uuid: str, lead_id: str) -> Any:
            session = ui.session(request)
            if session is None:
                return ui.login(request)
            form = await request.post()
            action = str(form.get("action", ""))
            if not ui.csrf_ok(session, form) or action not in ("call_now", "never_call"):
                return web.json_response({"error": "bad form"}, status=400)
            site = normalize_site_uuid(site_uuid) or site_uuid
            lead = normalize_lead_id(lead_id) or lead_id
            await ui.act([site], action, session.name, lead)
            if session.cookie is None:
                return web.json_response({"action": action, "site": site, "lead_id": lead})
            return _see(f"/ui/leads/{site}/{lead}")

    @app.page("/ui/dialer")
    class Dialer(View):
        async def post(self, request: Any) -> Any:
            session = ui.session(request)
            if session is None:
                return ui.login(request)
            form = await request.post()
            action = str(form.get("action", ""))
            if not ui.csrf_ok(session, form) or action not in ("pause", "resume"):
                return web.json_response({"error": "bad form"}, status=400)
            target = str(form.get("site", "")).strip()
            if target == ALL_SITES:
                # Every site, durably: one switch per partition that holds every site until
                # "resume every site", which also lifts the pause of each site paused alone.
                partitions = await ui.act_on_every_site(action, session.name)
                count = 0
                if action == "resume":
                    summaries = await ui.gather("/ui/internal/summary", ui.local_summaries)
                    sites = {s["site_uuid"] for s in summaries if "site_uuid" in s and s["paused"]}
                    count = await ui.act(sorted(sites), action, session.name, None)
                if session.cookie is None:
                    answer = {"action": action, "sites": ALL_SITES, "partitions": partitions}
                    return web.json_response({**answer, "site_resumes": count})
                return _see("/ui/")
            sites = {normalize_site_uuid(target) or ""} - {""}
            if any(is_all_sites(site) for site in sites):
                return web.json_response({"error": "bad form"}, status=400)
            count = await ui.act(sorted(sites), action, session.name, None)
            if session.cookie is None:
                return web.json_response({"action": action, "sites": count})
            return _see("/ui/")

    @app.page("/ui/internal/summary")
    class InternalSummary(View):
        async def get(self, request: Any) -> Any:
            if not ui.signed(request):
                return web.json_response({"error": "signed requests only"}, status=401)
            return web.Response(
                text=json.dumps(ui.local_summaries()), content_type="application/json"
            )

    @app.page("/ui/internal/search")
    class InternalSearch(View):
        async def get(self, request: Any) -> Any:
            if not ui.signed(request):
                return web.json_response({"error": "signed requests only"}, status=401)
            found = ui.local_search(request.query.get("q", "")[:200])
            return web.Response(text=json.dumps(found), content_type="application/json")
