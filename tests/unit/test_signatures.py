"""Signature checks: Real Geeks' own vector, rotation, malformed input, ElevenLabs tolerance."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.core.errors import SignatureError
from realgeeks_sync.app.core.settings import Secret
from realgeeks_sync.app.ingress.signatures import (
    sign_elevenlabs,
    sign_realgeeks,
    verify_elevenlabs,
    verify_realgeeks,
)

NOW = 1_800_000_000


def test_real_geeks_own_vector(realgeeks_fixture: dict[str, Any]) -> None:
    body = realgeeks_fixture["body"]
    assert len(body) == 970
    assert sign_realgeeks(realgeeks_fixture["secret"], body) == realgeeks_fixture["signature"]
    verify_realgeeks([Secret("seekrit")], body, realgeeks_fixture["signature"])


def test_vector_agrees_with_openssl(realgeeks_fixture: dict[str, Any]) -> None:
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", "seekrit"],
        input=realgeeks_fixture["body"],
        capture_output=True,
        check=True,
    )
    assert out.stdout.decode().split()[-1] == realgeeks_fixture["signature"]


def test_reserialized_body_fails(realgeeks_fixture: dict[str, Any]) -> None:
    import json

    body = json.dumps(json.loads(realgeeks_fixture["body"])).encode()
    with pytest.raises(SignatureError):
        verify_realgeeks([Secret("seekrit")], body, realgeeks_fixture["signature"])


def test_extra_vector_from_docs() -> None:
    body = b'{"action":"created","id":"a27c20af4497415d9e4e7334dd1d40d2"}'
    assert sign_realgeeks("seekrit", body) == (
        "f03c2711b0a6abc69f7eb1a5cef8e89bc6dce51ac3e657f26c5d39a55589e74f"
    )


def test_rotation_accepts_any_configured_secret() -> None:
    body = b'{"a":1}'
    secrets = [Secret("old"), Secret("new")]
    verify_realgeeks(secrets, body, sign_realgeeks("old", body))
    verify_realgeeks(secrets, body, sign_realgeeks("new", body).upper())
    with pytest.raises(SignatureError):
        verify_realgeeks([Secret("new")], body, sign_realgeeks("old", body))


@pytest.mark.parametrize("header", [None, "", "   ", "sha256=abc", "zz" * 32, "a" * 63, "a" * 65])
def test_malformed_realgeeks_headers(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_realgeeks([Secret("s")], b"{}", header)


@given(body=st.binary(max_size=256), header=st.one_of(st.none(), st.text(max_size=80)))
def test_realgeeks_only_signature_errors(body: bytes, header: str | None) -> None:
    with contextlib.suppress(SignatureError):
        verify_realgeeks([Secret("s")], body, header)


def test_elevenlabs_round_trip_and_tolerance() -> None:
    body = b'{"type":"post_call_transcription"}'
    secrets = [Secret("whsec")]
    assert verify_elevenlabs(secrets, body, sign_elevenlabs("whsec", body, NOW), now=NOW) == NOW
    # 29 minutes old passes, 31 fails; 4 minutes ahead passes, 6 fails.
    verify_elevenlabs(secrets, body, sign_elevenlabs("whsec", body, NOW - 29 * 60), now=NOW)
    for t in (NOW - 31 * 60, NOW + 6 * 60):
        with pytest.raises(SignatureError):
            verify_elevenlabs(secrets, body, sign_elevenlabs("whsec", body, t), now=NOW)
    verify_elevenlabs(secrets, body, sign_elevenlabs("whsec", body, NOW + 4 * 60), now=NOW)


def test_elevenlabs_signature_is_over_t_dot_body() -> None:
    body = b'{"x":1}'
    mac = __import__("hmac").new(b"k", f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    verify_elevenlabs([Secret("k")], body, f"t={NOW},v0={mac}", now=NOW)
    with pytest.raises(SignatureError):
        verify_elevenlabs([Secret("k")], body + b" ", f"t={NOW},v0={mac}", now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v0=abc",
        "t=abc,v0=00",
        f"t={NOW}",
        "t=1,t=2,v0=a",
        f"t={NOW},v0=",
        "garbage",
        f"t=-{NOW},v0=aa",
    ],
)
def test_malformed_elevenlabs_headers(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_elevenlabs([Secret("k")], b"{}", header, now=NOW)


@given(body=st.binary(max_size=128), header=st.one_of(st.none(), st.text(max_size=120)))
def test_elevenlabs_only_signature_errors(body: bytes, header: str | None) -> None:
    with contextlib.suppress(SignatureError):
        verify_elevenlabs([Secret("k")], body, header, now=NOW)


# Bounded cost: the header is checked before any hashing, one HMAC per secret.


@pytest.fixture
def hmac_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts HMACs computed by app.signatures (one entry per hmac.new)."""
    import hmac as hmac_module

    from realgeeks_sync.app.ingress import signatures as signatures_module

    calls: list[int] = []
    real_new = hmac_module.new

    def counting_new(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_new(*args, **kwargs)

    real_digest = hmac_module.digest

    def counting_digest(*args: Any, **kwargs: Any) -> Any:  # the one-shot path
        calls.append(1)
        return real_digest(*args, **kwargs)

    monkeypatch.setattr(signatures_module.hmac, "new", counting_new)
    monkeypatch.setattr(signatures_module.hmac, "digest", counting_digest)
    return calls


def test_thousands_of_empty_v0_values_are_refused_without_hashing(hmac_calls: list[int]) -> None:
    # The request: 8 KB of "v0=" values; each once cost an HMAC of the whole body
    # for every secret (19 s for a 16 MiB body).
    header = f"t={NOW}," + ",".join(["v0="] * 2000)
    with pytest.raises(SignatureError):
        verify_elevenlabs([Secret("a"), Secret("b")], b"x" * 1024, header, now=NOW)
    assert hmac_calls == []


@pytest.mark.parametrize(
    "header",
    [
        f"t={NOW}," + ",".join(["v0=" + "a" * 64] * 6),  # six values: one too many
        f"t={NOW},v0={'a' * 64}," + "x" * 500,  # over the length cap
        f"t={NOW},v0={'a' * 63}",  # not 64 hex characters
        f"t={NOW},v0={'g' * 64}",
    ],
)
def test_oversized_or_misshapen_elevenlabs_headers_cost_no_hmac(
    header: str, hmac_calls: list[int]
) -> None:
    with pytest.raises(SignatureError):
        verify_elevenlabs([Secret("k")], b"{}", header, now=NOW)
    assert hmac_calls == []


def test_one_hmac_per_secret_whatever_the_number_of_values(hmac_calls: list[int]) -> None:
    body = b'{"type":"post_call_transcription"}'
    good = sign_elevenlabs("new", body, NOW).split("v0=")[1]
    header = f"t={NOW}," + ",".join([f"v0={'0' * 64}"] * 4 + [f"v0={good}"])
    assert verify_elevenlabs([Secret("old"), Secret("new")], body, header, now=NOW) == NOW
    assert len(hmac_calls) == 2 + 1  # one per secret, plus sign_elevenlabs above


def test_realgeeks_header_stays_strict(hmac_calls: list[int]) -> None:
    body = b"{}"
    good = sign_realgeeks("s", body)
    for header in (f"{good},{good}", f"v0={good}", good + "0", f" {good} \t"):
        if header.strip() == good:
            verify_realgeeks([Secret("s")], body, header)
            continue
        with pytest.raises(SignatureError):
            verify_realgeeks([Secret("s")], body, header)
    assert len(hmac_calls) == 2  # the signer and the one header of the right shape
