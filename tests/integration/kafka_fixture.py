"""Start and stop a real local broker for integration tests (import from a conftest).

A broker that cannot start raises, so the tests that need it fail, never skip.
"""

from __future__ import annotations

import socket
from pathlib import Path

from shiftright_server.infra.kafka.launcher import KafkaLauncher


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nobody listens on right now."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def start_kafka(
    state_dir: Path, port: int | None = None, controller_port: int | None = None
) -> KafkaLauncher:
    """Launch a broker on ``state_dir`` (free ports when none given) and wait until ready."""
    spare = free_ports(2)
    launcher = KafkaLauncher(
        Path(state_dir), port=port or spare[0], controller_port=controller_port or spare[1]
    )
    launcher.launch()
    return launcher


def stop_kafka(launcher: KafkaLauncher) -> None:
    """Stop the broker; safe to call twice."""
    launcher.stop()
