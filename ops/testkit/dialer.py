"""The dialer's test settings: numbers inside (or outside) calling hours now, and the
environment of a worker pointed at the fake Real Geeks and ElevenLabs servers."""

from __future__ import annotations

from datetime import datetime, timedelta

from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from realgeeks_sync.app.domain.calling_window import local_call_window

__all__ = ["NUMBERS", "callable_number", "dialer_env"]

# Valid numbers in zones spread around the globe: one is always inside 08:00-21:00.
NUMBERS = [
    "+18088172382",
    "+12125550123",
    "+442079460958",
    "+61293744000",
    "+81332245000",
    "+912222022200",
    "+551133334444",
    "+14155550123",
]


def callable_number(now: datetime, *, allowed: bool) -> str:
    """A number whose local time now is (or is not) within calling hours, with margin."""
    for number in NUMBERS:
        ok = all(
            local_call_window(number, now + timedelta(minutes=m)).allowed_now == allowed
            for m in (0, 30)
        )
        if ok:
            return number
    raise AssertionError("no number fits; extend NUMBERS")


def dialer_env(rg: FakeRealGeeks, el: FakeElevenLabs, **extra: str) -> dict[str, str]:
    """Settings of a worker with the dialer on, pointed at the fakes."""
    return {
        "RGSYNC_DIALER_ENABLED": "true",
        "RGSYNC_ELEVENLABS_API_URL": el.url,
        "RGSYNC_ELEVENLABS_API_KEY": el.api_key,
        "RGSYNC_ELEVENLABS_AGENT_ID": "agent_1",
        "RGSYNC_ELEVENLABS_PHONE_NUMBER_ID": "phnum_1",
        "RGSYNC_REALGEEKS_API_URL": rg.url,
        "RGSYNC_REALGEEKS_API_USER": rg.user,
        "RGSYNC_REALGEEKS_API_PASSWORD": rg.password,
        "RGSYNC_RETRY_BASE_S": "0.2",
        "RGSYNC_RETRY_MAX_DELAY_S": "1",
        **extra,
    }
