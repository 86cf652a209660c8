"""The /ui/ pages as HTML: small, server-rendered, no JavaScript, readable on a phone.

Pure functions from plain data to a page (app/operations/ui.py gathers the data). Every
value is escaped; forms that change something carry the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from realgeeks_sync.app.domain.story import percentile

__all__ = ["dashboard_page", "lead_page", "login_page", "search_page"]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.6em;
align-items:center}header a{color:#fff;text-decoration:none;font-weight:600}
header form{margin-left:auto;display:flex;gap:.3em}main{padding:1em;max-width:60em;margin:auto}
input,button{font:inherit;padding:.35em .6em}button{cursor:pointer}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:1em;margin:0 0 1em}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(9em,1fr));gap:.6em}
.figure{background:#f0f3f7;border-radius:6px;padding:.5em}.figure b{display:block;font-size:1.4em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .4em;
border-bottom:1px solid #eef0f3;vertical-align:top;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:4px;padding:0 .4em;font-size:.85em;background:#e4e8ee}
.paused{background:#ffe3b3}.running{background:#cdeccf}.bad{background:#ffd2d2}
.story li{margin:.35em 0;list-style:none}.story{padding:0}.muted{color:#667085;font-size:.9em}
.actions{display:flex;flex-wrap:wrap;gap:.5em}
"""


def _page(title: str, body: str, *, name: str | None = None, query: str = "") -> str:
    nav = ""
    if name is not None:
        nav = (
            '<a href="/ui/">Dashboard</a>'
            '<form method="get" action="/ui/search" role="search">'
            f'<input name="q" value="{escape(query)}" placeholder="email, phone or lead id" '
            'aria-label="search">'
            "<button>Search</button></form>"
            f'<span class="muted">{escape(name)}</span>'
            '<form method="post" action="/ui/logout"><button>Log out</button></form>'
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · realgeeks-sync</title><style>{_STYLE}</style></head>"
        f"<body><header><span>realgeeks-sync</span>{nav}</header><main>{body}</main></body></html>"
    )


def login_page(error: str | None = None, next_url: str = "/ui/") -> str:
    """The login form: the admin token, and a name for the record of what one does."""
    problem = f'<p class="badge bad">{escape(error)}</p>' if error else ""
    body = (
        '<div class="card"><h1>Log in</h1>'
        f"{problem}"
        '<form method="post" action="/ui/login">'
        f'<input type="hidden" name="next" value="{escape(next_url)}">'
        '<p><label>Admin token<br><input type="password" name="token" required '
        'autocomplete="current-password"></label></p>'
        '<p><label>Your name (kept with what you do)<br><input name="name" maxlength="60">'
        "</label></p><p><button>Log in</button></p></form></div>"
    )
    return _page("Log in", body)


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(token)}">'


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def dashboard_page(
    sites: Sequence[Mapping[str, Any]],
    csrf: str,
    name: str,
    now: datetime,
    *,
    all_sites: Sequence[Mapping[str, Any]] = (),
    partitions: int = 1,
) -> str:
    """Today's figures for every site and the dialer's pause switch (each site, and all:
    ``all_sites`` holds the switch for every site of each partition the workers answered for,
    out of ``partitions``)."""
    totals: dict[str, float] = {}
    for site in sites:
        for field, value in (site.get("day") or {}).items():
            if isinstance(value, int | float):
                totals[field] = totals.get(field, 0) + value
    # Contact rate: AI calls that were a conversation, of those that ended, placed by the
    # dialer or taken from a lead calling (app/domain/story.py, count_day).
    ended = totals.get("calls_ended", 0)
    contact = f"{100 * totals.get('contacts', 0) / ended:.0f} %" if ended else "–"
    speed: list[float] = [s for site in sites for s in site.get("speed") or ()]
    p50, p99 = percentile(speed, 0.5), percentile(speed, 0.99)
    figures = [
        ("Leads today", f"{totals.get('leads', 0):.0f}"),
        ("Calls placed", f"{totals.get('calls_placed', 0):.0f}"),
        ("Calls taken (inbound)", f"{totals.get('calls_inbound', 0):.0f}"),
        ("Contact rate", contact),
        ("Tours requested", f"{totals.get('tours', 0):.0f}"),
        ("Opt-outs", f"{totals.get('optouts', 0):.0f}"),
        ("Speed to lead p50", _seconds(p50)),
        ("Speed to lead p99", _seconds(p99)),
        # Written today about a lead; no record says which were replayed or fixed since,
        # so this is not a count of those waiting (README, "The pages").
        ("Dead letters about leads today", f"{totals.get('deadletters', 0):.0f}"),
    ]
    boxes = "".join(
        f'<div class="figure"><span class="muted">{escape(label)}</span>'
        f"<b>{escape(value)}</b></div>"
        for label, value in figures
    )
    rows = "".join(_site_row(site, csrf) for site in sites)
    all_switch = (
        '<form method="post" action="/ui/dialer" class="actions">'
        f"{_csrf(csrf)}"
        '<button name="action" value="pause">Pause every site</button>'
        '<button name="action" value="resume">Resume every site</button>'
        '<input type="hidden" name="site" value="*"></form>'
        f"{_all_sites_state(all_sites, partitions)}"
    )
    body = (
        f'<div class="card"><h1>Today</h1><div class="figures">{boxes}</div>'
        f'<p class="muted">as of {escape(now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))}; '
        "contact rate: calls that were a conversation, of the AI calls that ended, placed or "
        "taken; dead letters: those written today about a lead (replays do not lower it), "
        "every one kept: <code>realgeeks-sync dlq list</code></p></div>"
        f'<div class="card"><h2>Sites and their dialers</h2>{all_switch}'
        "<table><thead><tr><th>site</th><th>dialer</th><th>leads</th><th>calls</th>"
        "<th>waiting</th><th></th></tr></thead>"
        f"<tbody>{rows or '<tr><td colspan=6>No site has sent a lead yet.</td></tr>'}</tbody>"
        "</table></div>"
    )
    return _page("Dashboard", body, name=name)


def _all_sites_state(switches: Sequence[Mapping[str, Any]], partitions: int) -> str:
    """Whether every site is paused: by each partition's switch (a pause of every site is
    applied by each partition's worker in turn; one that did not answer is not counted)."""
    paused = sorted(str(s["paused"]) for s in switches if s.get("paused"))
    if not paused:
        return ""
    held = len({s.get("partition") for s in switches if s.get("paused")})
    if held >= partitions:
        return (
            '<p><span class="badge paused">all sites paused</span> '
            f'<span class="muted">{escape(paused[0])}; nothing is dialed until '
            "&ldquo;Resume every site&rdquo;</span></p>"
        )
    return (
        '<p><span class="badge paused">all sites paused</span> '
        f'<span class="muted">{escape(paused[0])}; applied on {held} of {partitions} '
        "partitions so far (or a worker did not answer)</span></p>"
    )


def _site_row(site: Mapping[str, Any], csrf: str) -> str:
    day = site.get("day") or {}
    uuid = str(site.get("site_uuid") or "")
    paused = site.get("paused")
    paused_all = site.get("paused_all")
    if not site.get("enabled", True):
        state = '<span class="badge">off</span>'
    elif paused:
        state = (
            f'<span class="badge paused">paused</span> <span class="muted">{escape(paused)}</span>'
        )
    elif paused_all:
        state = (
            '<span class="badge paused">paused (all sites)</span> '
            f'<span class="muted">{escape(paused_all)}</span>'
        )
    else:
        state = '<span class="badge running">running</span>'
    action = "resume" if paused else "pause"
    switch = (
        '<form method="post" action="/ui/dialer">'
        f'{_csrf(csrf)}<input type="hidden" name="site" value="{escape(uuid)}">'
        f'<button name="action" value="{action}">{action.capitalize()}</button></form>'
    )
    return (
        f"<tr><td>{escape(str(site.get('name') or uuid))}<br>"
        f'<span class="muted">{escape(uuid)}</span></td><td>{state}</td>'
        f"<td>{int(day.get('leads', 0))}</td><td>{int(day.get('calls_placed', 0))}</td>"
        f"<td>{int(site.get('waiting', 0))} · {int(site.get('in_flight', 0))} on the line</td>"
        f"<td>{switch}</td></tr>"
    )


def lead_page(data: Mapping[str, Any], csrf: str, name: str) -> str:
    """One lead across everything: who, the dialer, and each step of its story."""
    site, lead = str(data["site_uuid"]), str(data["lead_id"])
    snapshot = data.get("snapshot") or {}
    fields = snapshot.get("fields") or {}
    full = " ".join(str(fields.get(k) or "") for k in ("first_name", "last_name")).strip()
    title = full or "Lead " + lead
    facts = [
        ("Site", data.get("site_name") or site),
        ("Lead id", lead),
        ("Also known as", ", ".join(x for x in snapshot.get("source_lead_ids") or () if x != lead)),
        ("Emails", ", ".join(snapshot.get("emails") or ())),
        ("Phones", ", ".join(snapshot.get("phones") or ())),
        ("Role", fields.get("role")),
        ("Source", fields.get("source")),
        ("Agent", fields.get("agent_name")),
        ("First seen", snapshot.get("created_at")),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts if v)
    if not snapshot:
        rows += '<tr><td colspan=2 class="muted">No snapshot of this lead on record.</td></tr>'
    body = f'<div class="card"><h1>{escape(title)}</h1><table>{rows}</table></div>'
    body += _dialer_card(data, site, lead, csrf)
    body += _story_card(data)
    return _page(title, body, name=name)


def _dialer_card(data: Mapping[str, Any], site: str, lead: str, csrf: str) -> str:
    dialer = data.get("dialer")
    dnc = data.get("do_not_call") or {}
    parts = []
    if dialer:
        status = escape(str(dialer.get("status")))
        reason = escape(str(dialer.get("reason") or ""))
        parts.append(f'<p>Dialer: <span class="badge">{status}</span> {reason}</p>')
        if dialer.get("never_call"):
            parts.append(f"<p>Never call: {escape(str(dialer['never_call']))}</p>")
        attempts = dialer.get("attempts") or []
        if attempts:
            cells = "".join(
                f"<tr><td>{int(a.get('number', 0))}</td><td>{escape(_when(a.get('sent_at')))}</td>"
                f"<td>{escape(str(a.get('state')))}</td><td>{escape(str(a.get('outcome') or ''))}"
                f"</td><td class=muted>{escape(str(a.get('conversation_id') or ''))}</td></tr>"
                for a in attempts
            )
            parts.append(
                "<table><thead><tr><th>#</th><th>sent</th><th>request</th><th>outcome</th>"
                f"<th>conversation</th></tr></thead><tbody>{cells}</tbody></table>"
            )
    else:
        parts.append('<p class="muted">The dialer has not seen this lead.</p>')
    if dnc.get("lead") or dnc.get("phones"):
        listed = ", ".join([*(["the lead"] if dnc.get("lead") else []), *(dnc.get("phones") or ())])
        parts.append(f'<p><span class="badge bad">do not call</span> {escape(listed)}</p>')
    target = f"/ui/leads/{quote(site, safe='')}/{quote(lead, safe='')}/dialer"
    parts.append(
        f'<form method="post" action="{escape(target)}" class="actions">{_csrf(csrf)}'
        '<button name="action" value="call_now">Call now (within its window)</button>'
        '<button name="action" value="never_call">Never call</button></form>'
    )
    return '<div class="card"><h2>Calls</h2>' + "".join(parts) + "</div>"


def _story_card(data: Mapping[str, Any]) -> str:
    outbox = data.get("outbox") or {}
    items = []
    for entry in reversed(list(data.get("story") or ())):
        detail = dict(entry.get("detail") or {})
        extra = ""
        if entry.get("kind") == "writeback":
            state = outbox.get(detail.get("activity_id") or detail.get("update_id")) or {}
            status = str(state.get("status") or "waiting")
            css = "running" if status == "posted" else "bad" if status == "failed" else ""
            extra = f' <span class="badge {css}">{escape(status)}</span>'
            if state.get("error"):
                extra += f' <span class="muted">{escape(str(state["error"])[:160])}</span>'
        shown = ", ".join(
            f"{k}: {v}" for k, v in detail.items() if k not in ("event", "activity_id", "update_id")
        )
        items.append(
            f'<li><span class="muted">{escape(_short(entry.get("at")))}</span> '
            f'<span class="badge">{escape(str(entry.get("kind")))}</span> '
            f"{escape(str(entry.get('title')))}{extra}"
            + (f'<br><span class="muted">{escape(shown)}</span>' if shown else "")
            + "</li>"
        )
    listed = "".join(items) or '<li class="muted">Nothing recorded yet.</li>'
    return f'<div class="card"><h2>Story</h2><ul class="story">{listed}</ul></div>'


def search_page(query: str, results: Sequence[Mapping[str, Any]], name: str) -> str:
    """Leads found by email, phone or Real Geeks id, across every site."""
    rows = "".join(
        f'<li><a href="/ui/leads/{quote(str(r["site_uuid"]), safe="")}/'
        f'{quote(str(r["lead_id"]), safe="")}">{escape(str(r.get("name") or r["lead_id"]))}</a>'
        f' <span class="muted">{escape(str(r.get("site_name") or r["site_uuid"]))} · '
        f"{escape(str(r.get('match') or ''))}</span></li>"
        for r in results
    )
    found = rows or '<li class="muted">No lead matches.</li>'
    body = f'<div class="card"><h1>Search: {escape(query)}</h1><ul>{found}</ul></div>'
    return _page("Search", body, name=name, query=query)


def _when(stamp: Any) -> str:
    if isinstance(stamp, int | float):
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(stamp or "")


def _short(stamp: Any) -> str:
    text = str(stamp or "")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text[:19]
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
