"""Who may see the /ui/ pages: the admin token as a bearer header, or a login cookie.

A person types the admin token (and, optionally, a name for the record of what they do)
into the login form; the answer sets a cookie (HttpOnly, SameSite=Strict, Secure over
HTTPS) holding the name and an expiry, signed with a key derived one-way from the token:
the token itself is never stored in the browser. Forms that change something carry a
token bound to that cookie (``csrf_token``); SameSite=Strict already keeps other sites'
pages from sending the cookie, this is the second lock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.operations.admin_auth import authorized

__all__ = [
    "COOKIE",
    "SESSION_S",
    "Session",
    "check_token",
    "csrf_token",
    "make_session",
    "read_session",
    "ui_session",
]

COOKIE = "rgsync_session"
SESSION_S = 12 * 3600
_DERIVATION = b"realgeeks-sync ui session v1"


class Session:
    """A logged-in person: the name they gave (for the record) and the cookie's value."""

    def __init__(self, name: str, cookie: str | None) -> None:
        self.name = name
        self.cookie = cookie  # None: a script with the bearer header (no form, no CSRF)


def _key(settings: Settings) -> bytes | None:
    token = settings.admin_token
    if not token:
        return None
    return hmac.new(token.reveal().encode("utf-8"), _DERIVATION, hashlib.sha256).digest()


def check_token(settings: Settings, supplied: str) -> bool:
    """Whether a typed token is the admin token (constant time)."""
    token = settings.admin_token
    if not token or not supplied:
        return False
    given = supplied.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token.reveal().encode("utf-8"))


def make_session(settings: Settings, name: str, now: float | None = None) -> str:
    """The cookie value for a person who just logged in."""
    key = _key(settings)
    assert key is not None, "no admin token: nobody can log in"
    payload = {"n": name.strip()[:60] or "admin", "e": int((now or time.time()) + SESSION_S)}
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def read_session(settings: Settings, value: str, now: float | None = None) -> str | None:
    """The name in a valid, unexpired cookie; None otherwise."""
    key = _key(settings)
    if key is None or not value or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "surrogateescape")):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        expires, name = int(payload["e"]), str(payload["n"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (now or time.time()):
        return None
    return name


def csrf_token(settings: Settings, cookie: str) -> str:
    """The token a form must carry to act for the holder of ``cookie``."""
    key = _key(settings) or b""
    return hmac.new(key, b"csrf\x1f" + cookie.encode(), hashlib.sha256).hexdigest()[:32]


def ui_session(settings: Settings, request: Any) -> Session | None:
    """The session of a request: the bearer header (a script) or a valid cookie."""
    if authorized(settings, request):
        return Session("api", None)
    cookie = request.cookies.get(COOKIE, "")
    name = read_session(settings, cookie)
    return Session(name, cookie) if name is not None else None
