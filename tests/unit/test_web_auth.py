"""The admin token check of /tables/*: a wrong or undecodable header is a 401, never a 500."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.core.settings import Secret
from realgeeks_sync.app.operations.admin_auth import authorized

SETTINGS = SimpleNamespace(admin_token=Secret("s3cret-token"))


def check(header: str) -> bool:
    return authorized(SETTINGS, SimpleNamespace(headers={"Authorization": header}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer \udcff\udcfe",  # bytes 0xff 0xfe as aiohttp hands them over: the old 500
        "Bearer s3cret-token\udc80",
        "Bearer é",
        "Bearer \x00",
        "Basic s3cret-token",
        "Bearer",
        "",
    ],
)
def test_wrong_or_undecodable_headers_are_refused_not_raised(header: str) -> None:
    assert check(header) is False


def test_the_token_passes() -> None:
    assert check("Bearer s3cret-token") and check("bearer   s3cret-token ")


@given(st.text())
def test_any_header_is_a_yes_or_no(header: str) -> None:
    assert check(f"Bearer {header}") in (True, False)
