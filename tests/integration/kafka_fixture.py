"""Start and stop a real local broker for integration tests (import from a conftest).

A broker that cannot start raises, so the tests that need it fail, never skip.
"""

from __future__ import annotations

import socket
from pathlib import Path

from shiftright_server.infra.kafka.jars import resolve_jars
from shiftright_server.infra.kafka.launcher import KafkaLauncher

KAFKA_VERSION = KafkaLauncher(Path(".")).version


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


def resolve_kafka_jars(folder: Path) -> Path:
    """Kafka's runtime jars in ``folder``, resolved with Maven unless already there."""
    return resolve_jars(Path(folder) / f"lib-{KAFKA_VERSION}", KAFKA_VERSION)


def start_kafka(
    state_dir: Path,
    port: int | None = None,
    controller_port: int | None = None,
    jars: Path | None = None,
) -> KafkaLauncher:
    """Launch a broker on ``state_dir`` (free ports when none given) and wait until ready.
    ``jars`` (from :func:`resolve_kafka_jars`) saves each broker its own Maven run."""
    spare = free_ports(2)
    launcher = KafkaLauncher(
        Path(state_dir),
        port=port or spare[0],
        controller_port=controller_port or spare[1],
        version=KAFKA_VERSION,
    )
    if jars is not None and not launcher.lib_dir.exists():
        launcher.lib_dir.parent.mkdir(parents=True, exist_ok=True)
        launcher.lib_dir.symlink_to(jars, target_is_directory=True)
    launcher.launch()
    return launcher


def stop_kafka(launcher: KafkaLauncher) -> None:
    """Stop the broker; safe to call twice."""
    launcher.stop()


def discard_kafka(launcher: KafkaLauncher) -> None:
    """Kill a broker whose data is thrown away with it. A clean shutdown writes out every
    partition it holds; after a session's tests that is thousands, and tens of seconds."""
    proc = launcher.process
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(30)
    launcher.stop()  # the broker is gone: this only forgets its pid file
