"""Several local brokers forming one Kafka cluster, from the same jars as the single one.

Each node is a :class:`KafkaLauncher` (combined broker and controller) in its own
folder with its own ports; all share one cluster id and one static controller quorum, so
the cluster keeps a quorum while any one node is down. Topics get ``replicas`` copies and
need ``replicas - 1`` in sync for a write (``min.insync.replicas``): with three nodes, one
may die without losing an acknowledged write or stopping writers that use ``acks=all``.
This is what tests and benchmarks use to check the pipeline on a real cluster.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import structlog
from confluent_kafka.admin import AdminClient
from shiftright_server.infra.kafka.launcher import KafkaLauncher, KafkaStartTimedOut

_log = structlog.get_logger(__name__)


class KafkaCluster:
    """``len(ports)`` local nodes; ``ports`` holds each node's (client, controller) port."""

    def __init__(
        self,
        state_dir: Path,
        ports: Sequence[tuple[int, int]],
        *,
        host: str = "127.0.0.1",
        version: str = "4.1.1",
        heap: str = "384m",
        partitions: int = 8,
    ) -> None:
        voters = ",".join(f"{i + 1}@{host}:{c}" for i, (_, c) in enumerate(ports))
        cluster_id = _cluster_id()
        self.nodes = [
            KafkaLauncher(
                Path(state_dir) / f"node-{i + 1}",
                host,
                port,
                controller,
                version,
                heap,
                partitions,
                node_id=i + 1,
                voters=voters,
                replicas=len(ports),
                cluster_id=cluster_id,
            )
            for i, (port, controller) in enumerate(ports)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def launch(self, timeout: float = 180.0) -> None:
        """Format every node, start them together (a quorum needs a majority), and wait
        until each answers and the cluster lists every broker."""
        for node in self.nodes:
            node.resolve()
            node.format()
        for node in self.nodes:
            node.start()
        try:
            for node in self.nodes:
                node.wait_ready(timeout)
            self.wait_for_brokers(len(self.nodes), timeout)
        except BaseException:
            self.stop()
            raise

    def wait_for_brokers(self, count: int, timeout: float = 120.0) -> None:
        """Block until the cluster's metadata lists ``count`` live brokers."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            try:
                seen = len(admin.list_topics(timeout=5).brokers)
            except Exception:  # KafkaException while a node is still coming up
                seen = 0
            if seen >= count:
                return
            time.sleep(0.5)
        raise KafkaStartTimedOut(
            f"the cluster lists {seen} of {count} brokers after {timeout:.0f}s"
        )

    def kill(self, index: int) -> None:
        """SIGKILL one node, as a crash would."""
        self.nodes[index].kill()

    def restart(self, index: int, timeout: float = 120.0) -> None:
        node = self.nodes[index]
        node.start()
        node.wait_ready(timeout)
        self.wait_for_brokers(len(self.nodes), timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(timeout=20)


def _cluster_id() -> str:
    """A new cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's,
    and, as Kafka's, never starting with "-" (the storage tool would read it as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text
