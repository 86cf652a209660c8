"""A Kafka broker in a container for the test session (testcontainers' generic container).

testcontainers' Kafka module is deprecated and refuses apache/kafka 4.x tags, so this runs
the image (apache/kafka, or the one ops/docker builds where no registry answers) as a plain
DockerContainer on the host network, configured by KAFKA_* variables, bound to free ports
on 127.0.0.1, and waits until the broker serves metadata.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from ops.testkit.support import (
    CONTAINER_LOGS,
    KAFKA_IMAGE,
    TEST_LABEL,
    broker_answers,
    container_log_tail,
    free_port,
    kafka_container_env,
)

__all__ = ["BrokerReady", "ContainerExitedError", "kafka_in_container"]


class ContainerExitedError(RuntimeError):
    """The container stopped before it was ready."""


class BrokerReady(WaitStrategy):
    """Ready when the broker at bootstrap answers a metadata request; fails at once on exit."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__()
        self.bootstrap = bootstrap

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            wrapped = container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status in ("exited", "dead"):
                raise ContainerExitedError(
                    f"the Kafka container exited during start-up:\n{container_log_tail(wrapped)}"
                )
            if broker_answers(self.bootstrap):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Kafka at {self.bootstrap} not ready in {self._startup_timeout:.0f} s:\n"
                    f"{container_log_tail(wrapped)}"
                )
            time.sleep(self._poll_interval)


@contextmanager
def kafka_in_container(image: str = KAFKA_IMAGE, startup_timeout: float = 120) -> Iterator[str]:
    """Run a one-node KRaft broker; yields its bootstrap address; removes the container after."""
    port, controller_port = free_port(), free_port()
    bootstrap = f"127.0.0.1:{port}"
    container: Any = (
        DockerContainer(image, network_mode="host", labels=TEST_LABEL)
        .with_envs(**kafka_container_env(port, controller_port))
        .waiting_for(BrokerReady(bootstrap).with_startup_timeout(startup_timeout))
    )
    with container:
        wrapped = container.get_wrapped_container()
        CONTAINER_LOGS["kafka"] = lambda: container_log_tail(wrapped)
        try:
            yield bootstrap
        finally:
            CONTAINER_LOGS.pop("kafka", None)
