"""Signed requests between workers: inspection routed to the owner without the admin token.

A worker that does not hold a site's partition forwards an inspection request to the
worker that does, at the address that worker advertises in the consumer group's metadata.
Forwarding the caller's bearer token there sent the admin token in clear to whatever
address a group member advertised. Instead the forwarding worker signs the request with
a key both share (RGSYNC_INTERNAL_SECRET, or one derived from the admin token, which then
never leaves the process): an HMAC over the method, the path with its query and a
timestamp. A signed request is good for one path for ``MAX_AGE_S``; it carries no secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from realgeeks_sync.app.core.settings import Secret

__all__ = [
    "FORWARDED_HEADER",
    "MAX_AGE_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "forwarding_key",
    "sign_forwarded",
    "verify_forwarded",
]

FORWARDED_HEADER = "X-Realgeeks-Sync-Forwarded"
TIMESTAMP_HEADER = "X-Realgeeks-Sync-Timestamp"
SIGNATURE_HEADER = "X-Realgeeks-Sync-Signature"
MAX_AGE_S = 30

_DERIVATION = b"realgeeks-sync inspection forwarding v1"


def forwarding_key(internal_secret: Secret | None, admin_token: Secret | None) -> bytes | None:
    """The key that signs forwarded requests; None when neither secret is configured."""
    if internal_secret:
        return internal_secret.reveal().encode("utf-8")
    if admin_token:
        # A one-way derivation: the token itself is never sent, nor this key.
        return hmac.new(admin_token.reveal().encode("utf-8"), _DERIVATION, hashlib.sha256).digest()
    return None


def _mac(key: bytes, method: str, path_qs: str, timestamp: str) -> str:
    message = f"{timestamp}\n{method.upper()}\n{path_qs}".encode("utf-8", "surrogateescape")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_forwarded(
    key: bytes, method: str, path_qs: str, origin: str, now: float
) -> dict[str, str]:
    """The headers of a forwarded request (no Authorization header among them)."""
    timestamp = str(int(now))
    return {
        FORWARDED_HEADER: origin,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: _mac(key, method, path_qs, timestamp),
    }


def verify_forwarded(
    key: bytes | None, headers: Mapping[str, str], method: str, path_qs: str, now: float
) -> bool:
    """Whether a request was forwarded by a worker holding the key, within MAX_AGE_S."""
    signature = headers.get(SIGNATURE_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if key is None or not signature or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp[:12])) > MAX_AGE_S:
        return False
    expected = _mac(key, method, path_qs, timestamp).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))
