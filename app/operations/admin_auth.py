"""The admin token: who may see the inspection routes (constant-time bearer check)."""

from __future__ import annotations

import hmac
from typing import Any

from realgeeks_sync.app.core.settings import Settings

__all__ = ["authorized"]


def authorized(settings: Settings, request: Any) -> bool:
    """Bearer-token check in constant time; False when no token is configured."""
    token = settings.admin_token
    if token is None:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, supplied = header.partition(" ")
    if scheme.lower() != "bearer" or not supplied:
        return False
    # aiohttp keeps header bytes that are not UTF-8 as lone surrogates; encoded back as
    # they came, such a header is simply a wrong token (it once made a 500).
    given = supplied.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token.reveal().encode("utf-8"))
