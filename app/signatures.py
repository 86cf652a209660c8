"""Webhook signatures: one HMAC core, a thin verifier per sender, and signers for tests.

Every bad input (missing header, malformed header, wrong MAC, stale timestamp) raises
``SignatureError`` so the ingress answers 401, never 500.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from app.errors import SignatureError
from app.settings import Secret

__all__ = [
    "sign_elevenlabs",
    "sign_realgeeks",
    "verify_elevenlabs",
    "verify_realgeeks",
]


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _matches_any(secrets: Iterable[Secret], message: bytes, signature: str) -> bool:
    """Constant-time check against every configured secret (rotation).

    Every secret is tried, even after a match, so timing does not tell which one signed.
    """
    supplied = signature.encode("ascii", "replace")
    matched = False
    for secret in secrets:
        expected = _mac(secret.reveal(), message).encode("ascii")
        matched |= hmac.compare_digest(expected, supplied)
    return matched


def sign_realgeeks(secret: str, body: bytes) -> str:
    """The X-Lead-Router-Signature Real Geeks sends: lowercase hex HMAC-SHA256 of the body."""
    return _mac(secret, body)


def verify_realgeeks(secrets: Iterable[Secret], body: bytes, header: str | None) -> None:
    """Check X-Lead-Router-Signature over the raw body bytes.

    Raises:
        SignatureError: missing, malformed or not made by any configured secret.
    """
    if not header:
        raise SignatureError("missing X-Lead-Router-Signature")
    signature = header.strip().lower()
    if len(signature) != 64 or any(c not in "0123456789abcdef" for c in signature):
        raise SignatureError("malformed X-Lead-Router-Signature")
    if not _matches_any(secrets, body, signature):
        raise SignatureError("signature does not match")


def sign_elevenlabs(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """An ElevenLabs-Signature header value: ``t=<unix>,v0=<hex HMAC of "t.body">``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v0={_mac(secret, str(t).encode() + b'.' + body)}"


def verify_elevenlabs(
    secrets: Iterable[Secret],
    body: bytes,
    header: str | None,
    *,
    now: float,
    tolerance_s: int = 30 * 60,
    future_tolerance_s: int = 5 * 60,
) -> int:
    """Check ElevenLabs-Signature over ``"<t>.<raw body>"`` and the timestamp's age.

    Returns the signed timestamp.

    Raises:
        SignatureError: missing or malformed header, wrong MAC, or t outside tolerance.
    """
    if not header:
        raise SignatureError("missing ElevenLabs-Signature")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key.strip(), []).append(value.strip())
    t_values, signatures = parts.get("t", []), parts.get("v0", [])
    if len(t_values) != 1 or not signatures:
        raise SignatureError("malformed ElevenLabs-Signature")
    t_raw = t_values[0]
    if not t_raw.isascii() or not t_raw.isdigit() or len(t_raw) > 12:
        raise SignatureError("malformed ElevenLabs-Signature timestamp")
    t = int(t_raw)
    if t < now - tolerance_s:
        raise SignatureError("ElevenLabs-Signature timestamp too old")
    if t > now + future_tolerance_s:
        raise SignatureError("ElevenLabs-Signature timestamp in the future")
    message = t_raw.encode() + b"." + body
    secret_list = list(secrets)
    if not any(_matches_any(secret_list, message, sig.lower()) for sig in signatures):
        raise SignatureError("signature does not match")
    return t
