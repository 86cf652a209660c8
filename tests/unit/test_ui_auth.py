"""The /ui/ login cookie: signed, expiring, never the token; pages escape what they show."""

from __future__ import annotations

from datetime import UTC, datetime

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.operations.ui_auth import (
    SESSION_S,
    check_token,
    csrf_token,
    make_session,
    read_session,
)
from realgeeks_sync.app.operations.ui_pages import dashboard_page, lead_page

NOW = 1_800_000_000.0


def settings(token: str = "the-admin-token") -> Settings:
    return Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "s", "RGSYNC_ADMIN_TOKEN": token})


def test_a_session_is_signed_expires_and_holds_no_token() -> None:
    s = settings()
    cookie = make_session(s, "Dana", now=NOW)
    assert "the-admin-token" not in cookie
    assert read_session(s, cookie, now=NOW + 60) == "Dana"
    assert read_session(s, cookie, now=NOW + SESSION_S + 1) is None
    body, mac = cookie.split(".")
    assert read_session(s, body + "." + "0" * len(mac), now=NOW) is None
    assert read_session(s, cookie.replace(body, body[:-2] + "AA"), now=NOW) is None
    assert read_session(settings("another-token"), cookie, now=NOW) is None
    assert read_session(s, "", now=NOW) is None and read_session(s, "a.b.c", now=NOW) is None
    assert check_token(s, " the-admin-token ") and not check_token(s, "nope")
    assert not check_token(settings(""), "")
    assert csrf_token(s, cookie) != csrf_token(s, make_session(s, "Eve", now=NOW))


def test_pages_escape_what_they_show() -> None:
    evil = "<script>alert(1)</script>"
    page = lead_page(
        {
            "site_uuid": "s",
            "lead_id": "l",
            "snapshot": {"fields": {"first_name": evil}, "emails": [evil]},
            "story": [
                {"id": "x", "at": "", "kind": "activity", "title": evil, "detail": {"a": evil}}
            ],
        },
        "csrf",
        evil,
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    sites = [{"site_uuid": evil, "name": evil, "paused": evil, "day": {"leads": 2}}]
    page = dashboard_page(sites, "csrf", "Dana", datetime.now(UTC))
    assert "<script>" not in page and "Leads today" in page


def test_the_dashboard_says_when_every_site_is_paused() -> None:
    now = datetime.now(UTC)
    sites = [{"site_uuid": "s1", "paused": None, "paused_all": "Dana at t", "day": {}}]
    switches = [
        {"switch": "all_sites", "partition": n, "paused": "Dana <script> at t"} for n in range(2)
    ]
    page = dashboard_page(sites, "csrf", "Dana", now, all_sites=switches, partitions=2)
    assert "all sites paused" in page and "paused (all sites)" in page and "<script>" not in page
    # A partition not answering (or not there yet) is told, not counted as paused.
    partial = dashboard_page(sites, "csrf", "Dana", now, all_sites=switches[:1], partitions=2)
    assert "applied on 1 of 2 partitions" in partial
    running = [{"switch": "all_sites", "partition": 0, "paused": None}]
    page = dashboard_page([], "csrf", "Dana", now, all_sites=running, partitions=1)
    assert "all sites paused" not in page
