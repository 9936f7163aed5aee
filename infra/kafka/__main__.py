"""Run the local broker in the foreground: ``python -m shiftright_server.infra.kafka --state-dir DIR``.

Prints one line ``kafka_ready bootstrap=HOST:PORT`` on stdout once clients can connect,
then waits on the broker; SIGTERM or SIGINT stop it gracefully (SIGKILL after 30 s), and
the exit code is the broker's. Logs (structlog) go to stderr; the broker's own log is
``<state-dir>/logs/kafka.log``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog
from shiftright_server.infra.kafka.jars import JarResolutionError
from shiftright_server.infra.kafka.launcher import KafkaLauncher, KafkaLaunchError
from shiftright_server.infra.logs import configure_logging

_log = structlog.get_logger("infra.kafka")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m shiftright_server.infra.kafka", description=__doc__
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19092)
    parser.add_argument("--controller-port", type=int, default=19093)
    parser.add_argument("--version", default="4.1.1", help="Apache Kafka 4.x version")
    parser.add_argument("--heap", default="512m")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    configure_logging(args.log_level)
    launcher = KafkaLauncher(
        args.state_dir, args.host, args.port, args.controller_port, args.version, args.heap
    )
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _request_stop(stopping))
    try:
        proc = launcher.launch()
    except (KafkaLaunchError, JarResolutionError) as exc:
        _log.error("kafka_launch_failed", error=str(exc))
        return 1
    if not stopping.is_set():
        print(f"kafka_ready bootstrap={launcher.bootstrap}", flush=True)
    while proc.poll() is None and not stopping.wait(0.5):
        pass
    code = launcher.stop() if stopping.is_set() else proc.returncode
    return _exit_code(code, stopping.is_set())


def _request_stop(stopping: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, _frame: FrameType | None) -> None:
        _log.info("kafka_stop_requested", signal=signal.Signals(signum).name)
        stopping.set()

    return handler


def _exit_code(code: int | None, asked_to_stop: bool) -> int:
    # The JVM exits 143 (128+SIGTERM) after a clean shutdown we asked for.
    if asked_to_stop and code in (0, 143, -signal.SIGTERM):
        return 0
    return 1 if code is None else abs(code)


if __name__ == "__main__":
    sys.exit(main())
