"""The dashboard's figures as a person reads them: inbound calls, contact rate, dead letters."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from realgeeks_sync.app.operations.ui_pages import dashboard_page

NOW = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)


def _figures(html: str) -> dict[str, str]:
    pairs = re.findall(r'<span class="muted">([^<]+)</span><b>([^<]+)</b>', html)
    return dict(pairs)


def test_inbound_calls_count_in_the_contact_rate_and_dead_letters_say_what_they_are() -> None:
    # One outbound call not answered, one inbound call that was a conversation.
    day = {"calls_placed": 1, "calls_ended": 2, "contacts": 1, "calls_inbound": 1}
    site = {"site_uuid": "site-1", "name": "Site", "day": day | {"deadletters": 3}}
    figures = _figures(dashboard_page([site], "csrf", "ops", NOW))
    assert figures["Calls placed"] == "1" and figures["Calls taken (inbound)"] == "1"
    assert figures["Contact rate"] == "50 %"
    # Written today about a lead, not "waiting": nothing records which were replayed.
    assert figures["Dead letters about leads today"] == "3"
    assert not any("waiting" in label.lower() for label in figures)
