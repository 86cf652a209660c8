"""The docker-compose stack (host-network variant) brought up through `ops/docker compose`."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from ops.testkit.support import ROOT, free_port, unique

__all__ = ["MEASURED", "ComposeStack", "LeadsReader", "NoRedirect"]

# Lines for the terminal summary (tests/containers/conftest.py).
MEASURED: list[str] = []


@dataclass
class ComposeStack:
    """One compose project on free 127.0.0.1 ports; every call goes through ops/docker."""

    project: str = field(default_factory=lambda: unique("rgsync"))
    secret: str = "test-secret"
    admin_token: str = "test-admin-token"
    ports: dict[str, int] = field(
        default_factory=lambda: {
            name: free_port()
            for name in ("KAFKA", "KAFKA_CONTROLLER", "WORKER", "INGRESS", "PROMETHEUS")
        }
    )

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RGSYNC_COMPOSE_")}
        env.pop("RGSYNC_SITES_FILE", None)  # the stack serves any site: no sites file
        env["RGSYNC_REALGEEKS_SECRETS"] = self.secret
        env["RGSYNC_ADMIN_TOKEN"] = self.admin_token
        env.update({f"RGSYNC_COMPOSE_{name}_PORT": str(p) for name, p in self.ports.items()})
        return env

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['KAFKA']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service.upper()]}"

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `ops/docker compose -p PROJECT ARGS`; raises with its output when it fails."""
        result = subprocess.run(
            [str(ROOT / "ops" / "docker"), "compose", "-p", self.project, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"ops/docker compose {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def services(self) -> list[dict[str, Any]]:
        """`docker compose ps` as records (Service, State, Health, ...)."""
        out = self.compose("ps", "--all", "--format", "json").stdout
        # Compose prints one JSON object per line (older releases: one JSON array).
        text = out.strip()
        if text.startswith("["):
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def logs(self, lines: int = 40) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", str(lines), timeout=60).stdout
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return f"(no logs: {exc})"

    def wait_healthy(self, service: str, timeout: float = 120) -> None:
        """Wait until a service's container reports healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {s["Service"]: s.get("Health") for s in self.services()}
            if states.get(service) == "healthy":
                return
            time.sleep(1)
        raise TimeoutError(f"{service} not healthy in {timeout:.0f} s:\n{self.logs()}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects raised as HTTPError (their status and Location), not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


class LeadsReader:
    """A consumer of one topic from its current end: sees only what is written after it."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": unique("reader"),
                "enable.auto.commit": False,
            }
        )
        metadata = self.consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(f"{topic}: {metadata.error}")
        assignment = []
        for p in metadata.partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assignment.append(TopicPartition(topic, p, high))
        self.consumer.assign(assignment)
        self.values: list[dict[str, Any]] = []

    def wait_for(self, source_lead_ids: set[str], timeout: float = 60) -> list[dict[str, Any]]:
        """Read until an event for every given source lead id arrived; returns all read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = {v.get("source_lead_id") for v in self.values}
            if source_lead_ids <= seen:
                break
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            self.values.append(json.loads(msg.value()))
        return self.values

    def close(self) -> None:
        self.consumer.close()
