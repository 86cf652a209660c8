"""Webhook signatures: one HMAC core, a thin verifier per sender, and signers for tests.

Every bad input (missing header, malformed header, wrong MAC, stale timestamp) raises
``SignatureError`` so the ingress answers 401, never 500.

The cost of a check is bounded before any hashing: a header is parsed and its shape
checked first (``parse_*``: cheap, before the body is even read), then one HMAC per
configured secret is computed and compared with every supplied value (``check_mac``).
An ElevenLabs header once held 2,000 empty ``v0=`` values and each triggered a fresh
HMAC over a 16 MiB body for every secret: 19 s on the event loop for one request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from realgeeks_sync.app.core.errors import SignatureError
from realgeeks_sync.app.core.settings import Secret

__all__ = [
    "ELEVENLABS_HEADER_MAX_CHARS",
    "ELEVENLABS_MAX_SIGNATURES",
    "ElevenLabsSignature",
    "check_mac",
    "matching_macs",
    "parse_elevenlabs",
    "parse_realgeeks",
    "sign_elevenlabs",
    "sign_realgeeks",
    "verify_elevenlabs",
    "verify_realgeeks",
]

# ElevenLabs sends one v0 value; a few allow for their own key rotation. Five values of
# 64 hex characters and a 12-digit timestamp need 360 characters.
ELEVENLABS_MAX_SIGNATURES = 5
ELEVENLABS_HEADER_MAX_CHARS = 512

def _is_hex64(value: str) -> bool:
    # strip() with the hex digits leaves nothing exactly when every character is one.
    return len(value) == 64 and not value.strip(_HEX_DIGITS)


_HEX_DIGITS = "0123456789abcdef"


def _mac(secret: str, *parts: bytes) -> str:
    if len(parts) == 1:  # one-shot C path: a third of the HMAC object's cost per webhook
        return hmac.digest(secret.encode("utf-8"), parts[0], "sha256").hex()
    # update() per part: "<t>." and a 16 MiB body are hashed without concatenating them.
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.hexdigest()


def check_mac(secrets: Iterable[Secret], parts: Sequence[bytes], signatures: Sequence[str]) -> None:
    """Compare every supplied signature with one HMAC per secret, in constant time.

    ``signatures`` must already be lowercase 64-hex strings (``parse_*`` returns them).
    Every pair is compared, even after a match, so timing does not tell which secret or
    which value matched. Large bodies: call it off the event loop (hashlib releases the GIL).

    Raises:
        SignatureError: no secret made any of the signatures.
    """
    if not any(matching_macs(secrets, parts, signatures)):
        raise SignatureError("signature does not match")


def matching_macs(
    secrets: Iterable[Secret], parts: Sequence[bytes], signatures: Sequence[str]
) -> tuple[bool, ...]:
    """For each secret, whether it made one of the signatures (every pair compared).

    Per-site secrets need to know which secret signed: its site must be the body's.
    """
    supplied = [s.encode("ascii") for s in signatures]
    found = []
    for secret in secrets:
        expected = _mac(secret.reveal(), *parts).encode("ascii")
        matched = False
        for value in supplied:
            matched |= hmac.compare_digest(expected, value)
        found.append(matched)
    return tuple(found)


def sign_realgeeks(secret: str, body: bytes) -> str:
    """The X-Lead-Router-Signature Real Geeks sends: lowercase hex HMAC-SHA256 of the body."""
    return _mac(secret, body)


def parse_realgeeks(header: str | None) -> str:
    """The signature of an X-Lead-Router-Signature header: exactly 64 hex characters.

    Raises:
        SignatureError: missing or malformed.
    """
    if not header:
        raise SignatureError("missing X-Lead-Router-Signature")
    signature = header.strip().lower()
    if not _is_hex64(signature):
        raise SignatureError("malformed X-Lead-Router-Signature")
    return signature


def verify_realgeeks(secrets: Iterable[Secret], body: bytes, header: str | None) -> None:
    """Check X-Lead-Router-Signature over the raw body bytes.

    Raises:
        SignatureError: missing, malformed or not made by any configured secret.
    """
    check_mac(secrets, (body,), [parse_realgeeks(header)])


def sign_elevenlabs(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """An ElevenLabs-Signature header value: ``t=<unix>,v0=<hex HMAC of "t.body">``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v0={_mac(secret, str(t).encode(), b'.', body)}"


@dataclass(frozen=True)
class ElevenLabsSignature:
    """A parsed ElevenLabs-Signature header: the signed timestamp and the v0 values."""

    timestamp: int
    prefix: bytes  # b"<t>.": what the MAC covers before the body
    signatures: tuple[str, ...]

    def parts(self, body: bytes) -> tuple[bytes, bytes]:
        """The byte strings the MAC covers, in order."""
        return (self.prefix, body)


def parse_elevenlabs(
    header: str | None,
    *,
    now: float,
    tolerance_s: int = 30 * 60,
    future_tolerance_s: int = 5 * 60,
) -> ElevenLabsSignature:
    """Parse ``t=<unix>,v0=<hex>[,v0=<hex>...]`` and check the timestamp's age.

    At most ELEVENLABS_MAX_SIGNATURES v0 values, each 64 hex characters, in a header of at
    most ELEVENLABS_HEADER_MAX_CHARS: checked before any hashing.

    Raises:
        SignatureError: missing, too long, malformed, or t outside tolerance.
    """
    if not header:
        raise SignatureError("missing ElevenLabs-Signature")
    if len(header) > ELEVENLABS_HEADER_MAX_CHARS:
        raise SignatureError("ElevenLabs-Signature too long")
    t_values: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "t":
            t_values.append(value)
        elif key == "v0":
            signature = value.lower()
            if not _is_hex64(signature):
                raise SignatureError("malformed ElevenLabs-Signature value")
            signatures.append(signature)
    if len(t_values) != 1 or not signatures:
        raise SignatureError("malformed ElevenLabs-Signature")
    if len(signatures) > ELEVENLABS_MAX_SIGNATURES:
        raise SignatureError("too many values in ElevenLabs-Signature")
    t_raw = t_values[0]
    if not t_raw.isascii() or not t_raw.isdigit() or len(t_raw) > 12:
        raise SignatureError("malformed ElevenLabs-Signature timestamp")
    t = int(t_raw)
    if t < now - tolerance_s:
        raise SignatureError("ElevenLabs-Signature timestamp too old")
    if t > now + future_tolerance_s:
        raise SignatureError("ElevenLabs-Signature timestamp in the future")
    return ElevenLabsSignature(t, t_raw.encode() + b".", tuple(signatures))


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
    parsed = parse_elevenlabs(
        header, now=now, tolerance_s=tolerance_s, future_tolerance_s=future_tolerance_s
    )
    check_mac(secrets, parsed.parts(body), parsed.signatures)
    return parsed.timestamp
