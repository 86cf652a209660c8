"""A contract-faithful fake of the Real Geeks Incoming Leads API on a real local HTTP port.

Also home of ``FakeServer``, the fault-injection base shared with ops/testkit/fakes/elevenlabs.py.
Run ``python -m ops.testkit.fakes.realgeeks --port 8081`` for a demo server that logs requests
and takes faults on ``POST /_fake/fail-next`` (see ``FakeServer.control_routes``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import web

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_USERS",
    "RECORD_KEY",
    "FakeRealGeeks",
    "FakeServer",
    "RecordedRequest",
    "serve_forever",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTROL_PREFIX = "/_fake/"

DEFAULT_USERS: list[dict[str, Any]] = [
    {
        "id": "14187",
        "role": "Agent",
        "admin": True,
        "name": "Jack Johnson",
        "email": "agent@example.com",
        "phone_office": "808-555-0100",
    },
    {"id": "14188", "role": "Lender", "admin": False, "name": "Lee Lender"},
]


@dataclass
class RecordedRequest:
    """One request as the fake received it; ``status`` is what it answered (None: no answer)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    time: float
    wall_time: float
    status: int | None = None

    def json(self) -> Any:
        """Return the body parsed as JSON.

        Raises:
            ValueError: the body is not JSON.
        """
        return json.loads(self.body)


RECORD_KEY = web.RequestKey("record", RecordedRequest)
"""Where the middleware leaves the request's record for handlers (arrival time etc.)."""


@dataclass
class _Script:
    """One scripted reaction, consumed by the next ``remaining`` matching requests."""

    remaining: int
    path: str | None = None
    method: str | None = None
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    delay_after: bool = False
    disconnect: bool = False
    disconnect_after: bool = False

    def matches(self, request: web.Request) -> bool:
        """Return True when the request's method and path are within this script's scope."""
        if self.method is not None and request.method.upper() != self.method.upper():
            return False
        return self.path is None or self.path in request.path


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode("utf-8"),
        content_type="application/json",
        headers=headers,
    )


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


class FakeServer:
    """A real aiohttp server on 127.0.0.1 that records requests and replays scripted faults.

    Scripts form one queue: each request consumes at most the first script whose
    ``path`` (substring) and ``method`` match. A global ``latency`` delays every answer.
    """

    #: Name used in log lines and the demo banner.
    name = "fake"

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0, control: bool = False
    ) -> None:
        self.host = host
        self.port = port
        self.latency = latency
        self.control = control
        self.requests: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """Return ``http://host:port`` of the running server.

        Raises:
            RuntimeError: the server is not started.
        """
        if self._runner is None:
            raise RuntimeError(f"{self.name} is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Return the base URL a client is configured with."""
        return self.origin

    async def start(self) -> Self:
        """Bind the port (0 picks a free one) and start answering."""
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        if self.control:
            self.control_routes(app)
        # handler_cancellation: a client that gave up (timeout) cancels its slow handler, so
        # close() never waits for an injected delay; access_log=None: we log without headers.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Stop the server and drop open connections."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- fault injection -------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        error: str | None = None,
        body: Any = None,
        path: str | None = None,
        method: str | None = None,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` instead of handling them.

        ``error`` goes into the API's usual error shape; ``body`` replaces the body outright;
        ``retry_after`` (seconds or an HTTP-date string) sets the Retry-After header.
        """
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = _format_retry_after(retry_after)
        self._scripts.append(
            _Script(
                remaining=times,
                path=path,
                method=method,
                status=status,
                body=body if body is not None else self.error_body(status, error),
                headers=extra,
                delay=delay,
            )
        )

    def delay_next(
        self,
        seconds: float,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """Delay the next ``times`` matching requests, before handling them or (if
        ``after_processing``) after the handler ran, so the write happens but the answer is late.
        """
        self._scripts.append(
            _Script(
                remaining=times,
                path=path,
                method=method,
                delay=seconds,
                delay_after=after_processing,
            )
        )

    def disconnect_next(
        self,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """Drop the connection of the next ``times`` matching requests without an answer:
        before handling them, or (``after_processing``) after the handler did its work."""
        self._scripts.append(
            _Script(
                remaining=times,
                path=path,
                method=method,
                disconnect=not after_processing,
                disconnect_after=after_processing,
            )
        )

    def clear_faults(self) -> None:
        """Forget every script not yet consumed."""
        self._scripts.clear()

    @property
    def pending_faults(self) -> int:
        """Return how many scripted reactions are still waiting for a request."""
        return sum(script.remaining for script in self._scripts)

    def requests_to(self, path_part: str, method: str | None = None) -> list[RecordedRequest]:
        """Return the recorded requests whose path contains ``path_part``."""
        return [
            r
            for r in self.requests
            if path_part in r.path and (method is None or r.method == method.upper())
        ]

    # -- for subclasses --------------------------------------------------------------------

    def error_body(self, status: int, error: str | None) -> Any:
        """Return the API's error body for ``status``; subclasses use their API's shape."""
        return {"error": error or f"HTTP {status}"}

    def add_routes(self, app: web.Application) -> None:
        """Register the API's routes."""

    def reset(self) -> None:
        """Forget recorded requests and pending faults (subclasses also clear their state)."""
        self.requests.clear()
        self.clear_faults()

    # -- internals -------------------------------------------------------------------------

    def _take_script(self, request: web.Request) -> _Script | None:
        for script in self._scripts:
            if script.remaining > 0 and script.matches(request):
                script.remaining -= 1
                if script.remaining == 0:
                    self._scripts.remove(script)
                return script
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=await request.read(),
            time=time.monotonic(),
            wall_time=time.time(),
        )
        request[RECORD_KEY] = record
        self.requests.append(record)
        try:
            response = await self._answer(request, handler)
        finally:
            log.info("%s %s %s -> %s", self.name, record.method, record.path, record.status)
        return response

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = request[RECORD_KEY]
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        script = self._take_script(request)
        if script is not None and not script.delay_after and script.delay > 0:
            await asyncio.sleep(script.delay)
        if script is not None and script.disconnect:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        if script is not None and script.status is not None:
            record.status = script.status
            return _json_response(script.status, script.body, script.headers)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # Unknown route or method: answer in the API's error shape, not aiohttp's text.
            response = _json_response(exc.status, self.error_body(exc.status, exc.reason))
        record.status = response.status
        if script is not None and script.delay_after and script.delay > 0:
            await asyncio.sleep(script.delay)
        if script is not None and script.disconnect_after:
            # The request was processed (a call placed, an activity written), but the
            # answer is lost: the connection closes without a response.
            record.status = None
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        return response

    def control_routes(self, app: web.Application) -> None:
        """Add the demo's fault API: POST /_fake/fail-next|delay-next|disconnect-next|reset.

        The JSON bodies are the keyword arguments of the methods of the same name.
        """

        async def call(request: web.Request) -> web.Response:
            action = request.match_info["action"]
            methods: dict[str, Callable[..., None]] = {
                "fail-next": self.fail_next,
                "delay-next": self.delay_next,
                "disconnect-next": self.disconnect_next,
                "reset": lambda: self.reset(),
            }
            method = methods.get(action)
            if method is None:
                return _json_response(404, {"error": f"unknown action {action!r}"})
            try:
                kwargs = await request.json() if request.can_read_body else {}
                method(**kwargs)
            except (TypeError, ValueError) as exc:
                return _json_response(400, {"error": str(exc)})
            return _json_response(200, {"pending_faults": self.pending_faults})

        async def state(request: web.Request) -> web.Response:
            return _json_response(200, self.state())

        app.router.add_post(CONTROL_PREFIX + "{action}", call)
        app.router.add_get(CONTROL_PREFIX + "state", state)

    def state(self) -> dict[str, Any]:
        """Return a JSON-able summary for the demo's ``GET /_fake/state``."""
        return {
            "requests": [
                {"method": r.method, "path": r.path, "status": r.status} for r in self.requests
            ],
            "pending_faults": self.pending_faults,
        }


# -- Real Geeks --------------------------------------------------------------------------------

_PROPERTY_INTEGER_FIELDS = ("full_baths", "half_baths", "bedrooms", "listing_days_on_market")
_PROPERTY_NUMBER_FIELDS = ("latitude", "longitude")


def _lead_key(lead_id: str) -> str:
    """Real Geeks ids are UUIDs, shown without dashes; other test ids stay as given."""
    try:
        return uuid.UUID(lead_id).hex
    except ValueError:
        return lead_id


def _valid_iso8601(value: str) -> bool:
    text = value.strip()
    # Real Geeks sends 9 fractional digits; datetime stops at 6, so trim before parsing.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = head + "." + tail[: min(digits, 6)] + tail[digits:]
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _activity_error(activity: Any) -> str | None:
    """Return Real Geeks' 422 text for an invalid activity, None if it is valid."""
    if not isinstance(activity, dict):
        return "Activity must be a JSON object."
    for name in ("type", "source", "description"):
        value = activity.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"Activity field '{name}' is required."
    created = activity.get("created")
    if created is not None and not (isinstance(created, str) and _valid_iso8601(created)):
        return "Activity field 'created' is not a valid ISO 8601 date."
    if "notify_users" in activity and not isinstance(activity["notify_users"], bool):
        return "Activity field 'notify_users' is not a valid boolean."
    user = activity.get("user")
    if user is not None and not isinstance(user, dict):
        return "Activity field 'user' must be an object."
    prop = activity.get("property")
    if prop is not None:
        if not isinstance(prop, dict):
            return "Activity field 'property' must be an object."
        for name in _PROPERTY_INTEGER_FIELDS:
            value = prop.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return f"Property field '{name}' is not a valid integer."
        for name in _PROPERTY_NUMBER_FIELDS:
            value = prop.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                return f"Property field '{name}' is not a valid number."
    return None


class FakeRealGeeks(FakeServer):
    """Fake Real Geeks Incoming Leads API under ``{url}`` = ``http://127.0.0.1:<port>/rest``.

    Checks HTTP Basic auth (401), JSON bodies (400) and the documented fields (422), and
    records what it accepted: ``activities[(site_uuid, lead_id)]``, ``leads``, ``lead_patches``.
    Unknown leads are accepted (the real API's behaviour there is undocumented).
    """

    name = "fake-realgeeks"

    def __init__(
        self,
        *,
        user: str = "rg-user",
        password: str = "rg-password",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        control: bool = False,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, control=control)
        self.user = user
        self.password = password
        self.auth_failure = False
        self.activities: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.leads: dict[tuple[str, str], dict[str, Any]] = {}
        self.lead_patches: list[tuple[str, str, dict[str, Any]]] = []
        self.users: dict[str, list[dict[str, Any]]] = {}

    @property
    def url(self) -> str:
        """Return the API base, like ``https://receivers.leadrouter.realgeeks.com/rest``."""
        return self.origin + "/rest"

    def set_auth_failure(self, enabled: bool = True) -> None:
        """Answer every request 401 (as after a revoked login) until called with False."""
        self.auth_failure = enabled

    def reset(self) -> None:
        """Forget requests, faults, activities, leads and patches."""
        super().reset()
        self.auth_failure = False
        self.activities.clear()
        self.leads.clear()
        self.lead_patches.clear()

    def all_activities(self) -> list[dict[str, Any]]:
        """Return every accepted activity, all leads together, in arrival order per lead."""
        return [a for items in self.activities.values() for a in items]

    def add_routes(self, app: web.Application) -> None:
        """Register the Incoming Leads API routes under /rest."""
        app.router.add_post("/rest/sites/{site}/leads/{lead}/activities", self._post_activities)
        app.router.add_post("/rest/sites/{site}/leads", self._create_lead)
        app.router.add_patch("/rest/sites/{site}/leads/{lead}", self._update_lead)
        app.router.add_get("/rest/sites/{site}/users", self._list_users)

    def state(self) -> dict[str, Any]:
        """Return requests plus accepted activities for the demo's ``GET /_fake/state``."""
        summary = super().state()
        summary["activities"] = {f"{s}:{lead}": a for (s, lead), a in self.activities.items()}
        return summary

    # -- request checks --------------------------------------------------------------------

    def _auth_error(self, request: web.Request) -> web.Response | None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        user, colon, password = decoded.partition(":")
        if (
            self.auth_failure
            or scheme.lower() != "basic"
            or not colon
            or not hmac.compare_digest(user.encode(), self.user.encode())
            or not hmac.compare_digest(password.encode(), self.password.encode())
        ):
            return _json_response(401, {"error": "Invalid credentials"})
        return None

    async def _json_body(self, request: web.Request) -> tuple[Any, web.Response | None]:
        if request.content_type != "application/json":
            return None, _json_response(400, {"error": "Content-Type must be application/json"})
        try:
            return json.loads(await request.read()), None
        except ValueError:
            return None, _json_response(400, {"error": "Invalid JSON"})

    # -- handlers --------------------------------------------------------------------------

    async def _post_activities(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        body, bad = await self._json_body(request)
        if bad is not None:
            return bad
        if not isinstance(body, list):
            return _json_response(422, {"error": "Activities must be a JSON array."})
        for activity in body:
            if (problem := _activity_error(activity)) is not None:
                return _json_response(422, {"error": problem})
        site, lead = request.match_info["site"], _lead_key(request.match_info["lead"])
        self.activities[(site, lead)].extend(body)
        return _json_response(200, {})

    async def _create_lead(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        lead, bad = await self._json_body(request)
        if bad is not None:
            return bad
        if not isinstance(lead, dict):
            return _json_response(422, {"error": "Lead must be a JSON object."})
        source = lead.get("source")
        if not isinstance(source, str) or not source.strip():
            return _json_response(422, {"error": "Lead field 'source' is required."})
        lead_id = lead.get("id")
        if lead_id is None:
            lead_id = uuid.uuid4().hex
        try:
            key = uuid.UUID(lead_id).hex
        except (TypeError, ValueError, AttributeError):
            return _json_response(422, {"error": "Lead field 'id' is not a valid UUID."})
        activities = lead.get("activities") or []
        if not isinstance(activities, list):
            return _json_response(422, {"error": "Lead field 'activities' must be an array."})
        for activity in activities:
            if (problem := _activity_error(activity)) is not None:
                return _json_response(422, {"error": problem})
        site = request.match_info["site"]
        stored = {k: v for k, v in lead.items() if k != "activities"}
        stored["id"] = key
        # Real Geeks may fold a create into an existing lead; the fake updates it in place.
        self.leads.setdefault((site, key), {}).update(stored)
        self.activities[(site, key)].extend(activities)
        return _json_response(201, {})

    async def _update_lead(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        fields, bad = await self._json_body(request)
        if bad is not None:
            return bad
        if not isinstance(fields, dict):
            return _json_response(422, {"error": "Lead must be a JSON object."})
        activities = fields.get("activities") or []
        if not isinstance(activities, list):
            return _json_response(422, {"error": "Lead field 'activities' must be an array."})
        for activity in activities:
            if (problem := _activity_error(activity)) is not None:
                return _json_response(422, {"error": problem})
        site, lead = request.match_info["site"], _lead_key(request.match_info["lead"])
        self.lead_patches.append((site, lead, fields))
        stored = self.leads.setdefault((site, lead), {"id": lead})
        for name, value in fields.items():
            if name == "activities":
                continue
            if value == "":
                stored.pop(name, None)  # an empty string unsets the field
            else:
                stored[name] = value
        self.activities[(site, lead)].extend(activities)
        return _json_response(200, {})

    async def _list_users(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        users = self.users.get(request.match_info["site"], DEFAULT_USERS)
        return _json_response(200, users)


async def serve_forever(fake: FakeServer, banner: str) -> None:
    """Run ``fake`` until interrupted, printing ``banner`` once it listens."""
    async with fake:
        print(banner.format(url=fake.url), flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Run the fake Real Geeks API for a demo."""
    parser = argparse.ArgumentParser(description="Fake Real Geeks Incoming Leads API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--user", default="rg-user")
    parser.add_argument("--password", default="rg-password")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fake = FakeRealGeeks(
        user=args.user,
        password=args.password,
        host=args.host,
        port=args.port,
        latency=args.latency,
        control=True,
    )
    banner = (
        "fake Real Geeks API at {url} (Basic auth user "
        f"{args.user!r}); faults: POST {fake.host}:{args.port}{CONTROL_PREFIX}fail-next"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(fake, banner))


if __name__ == "__main__":
    main()
