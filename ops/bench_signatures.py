"""Signature checks: the CPU time of the worst header still accepted, and of the issue's attack.

    .venv/bin/python ops/bench_signatures.py [--repeat 5] [--secrets 2]

The worst ElevenLabs header still accepted: five v0 values (the most a header may carry),
the matching one last, over the largest body the ingress verifies (16 MiB: post_call_audio
is verified before it is dropped), with two configured secrets (a rotation). The worst
Real Geeks one: a 1 MiB body (RGSYNC_MAX_BODY_BYTES' default). Then the request from
issue 10 (2,000 empty v0 values over 16 MiB), which once cost an HMAC per value and
secret and is now refused before any hashing. CPU time is the process's (time.process_time),
median of --repeat runs. The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realgeeks_sync.app.core.errors import SignatureError  # noqa: E402
from realgeeks_sync.app.core.settings import Secret  # noqa: E402
from realgeeks_sync.app.ingress.signatures import (  # noqa: E402
    ELEVENLABS_MAX_SIGNATURES,
    sign_elevenlabs,
    sign_realgeeks,
    verify_elevenlabs,
    verify_realgeeks,
)

NOW = 1_800_000_000
MIB = 1024 * 1024


def cpu_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median process CPU time of ``fn`` in milliseconds."""
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        runs.append((time.process_time() - started) * 1000)
    return round(statistics.median(runs), 3)


def refused(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except SignatureError:
            return
        raise AssertionError("accepted")

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--secrets", type=int, default=2, help="configured secrets (rotation)")
    args = parser.parse_args(argv)
    secrets = [Secret(f"secret-{i}") for i in range(args.secrets)]
    audio = b'{"type":"post_call_audio","data":{"full_audio":"' + b"A" * (16 * MIB - 64)
    audio += b'"}'
    good = sign_elevenlabs(secrets[-1].reveal(), audio, NOW).split("v0=")[1]
    wrong = [f"v0={'0' * 64}"] * (ELEVENLABS_MAX_SIGNATURES - 1)
    worst_el = f"t={NOW}," + ",".join([*wrong, f"v0={good}"])
    rg_body = b'{"notes":"' + b"x" * (MIB - 12) + b'"}'
    rg_header = sign_realgeeks(secrets[-1].reveal(), rg_body)
    attack = f"t={NOW}," + ",".join(["v0="] * 2000)

    result = {
        "secrets": args.secrets,
        "elevenlabs_worst_accepted_ms": cpu_ms(
            lambda: verify_elevenlabs(secrets, audio, worst_el, now=NOW), args.repeat
        ),
        "elevenlabs_body_mib": round(len(audio) / MIB, 2),
        "elevenlabs_values": ELEVENLABS_MAX_SIGNATURES,
        "realgeeks_worst_accepted_ms": cpu_ms(
            lambda: verify_realgeeks(secrets, rg_body, rg_header), args.repeat
        ),
        "attack_refused_ms": cpu_ms(
            refused(lambda: verify_elevenlabs(secrets, audio, attack, now=NOW)), args.repeat
        ),
        # What the old check spent on the attack: one HMAC of the body per value and secret.
        "one_hmac_16mib_ms": cpu_ms(
            lambda: hmac.new(b"k", audio, hashlib.sha256).digest(), args.repeat
        ),
    }
    result["attack_old_estimate_s"] = round(
        result["one_hmac_16mib_ms"] * 2000 * args.secrets / 1000, 1
    )
    for key, value in result.items():
        print(f"{key:>32}: {value}")
    print("RESULT " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
