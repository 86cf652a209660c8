"""Sending signed webhooks to a worker and reading what it wrote (integration tests)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from ops.testkit.support import PYTHON, ROOT, Worker, drain_json
from realgeeks_sync.app.ingress.signatures import sign_elevenlabs, sign_realgeeks

__all__ = ["cli", "outputs", "send_elevenlabs", "send_realgeeks"]


def send_realgeeks(
    worker: Worker | str,
    body: dict[str, Any] | bytes,
    *,
    action: str | None = None,
    message_id: str | None = None,
    timestamp: str | None = None,
    secret: str = "test-secret",
) -> int:
    """POST a signed Real Geeks webhook to a worker (or a base URL); returns the HTTP status."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Lead-Router-Signature": sign_realgeeks(secret, raw),
    }
    for name, value in (
        ("X-Lead-Router-Action", action),
        ("X-Lead-Router-Message-Id", message_id),
        ("X-Lead-Router-Timestamp", timestamp),
    ):
        if value is not None:
            headers[name] = value
    base = worker if isinstance(worker, str) else worker.url
    return _post(f"{base}/webhooks/realgeeks", raw, headers)


def send_elevenlabs(url: str, body: dict[str, Any], secret: str = "el-secret") -> int:
    """POST a signed ElevenLabs webhook; returns the HTTP status."""
    raw = json.dumps(body).encode()
    return _post(
        url,
        raw,
        {"Content-Type": "application/json", "ElevenLabs-Signature": sign_elevenlabs(secret, raw)},
    )


def _post(url: str, raw: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def outputs(
    bootstrap: str,
    worker: Worker,
    topic: str,
    *,
    count: int | None = None,
    timeout: float = 30.0,
    match: Any = None,
    config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Decoded records of one of the worker's topics (optionally those ``match`` accepts).

    ``config``: the reader's security settings for a secured broker.
    """
    name = worker.env["RGSYNC_TOPIC_PREFIX"] + topic

    def enough(msgs: list[Any]) -> bool:
        values = [json.loads(m.value()) for m in msgs]
        if match is not None:
            values = [v for v in values if match(v)]
        return count is not None and len(values) >= count

    values = drain_json(bootstrap, name, timeout=timeout, until=enough, config=config)
    return [v for v in values if match is None or match(v)]


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run ``realgeeks-sync ARGS`` with a worker's settings; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "realgeeks_sync.app.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()
