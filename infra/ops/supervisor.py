"""Process supervision for ``shiftright up`` / ``down`` / ``status``.

Each component runs detached (its own session) so it outlives the CLI, with its pid in
``<state>/run/<name>.pid`` and its output in ``<state>/logs/<name>.log``. Kafka is
special-cased through :class:`infra.kafka.launcher.KafkaLauncher`, which owns its pid file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from shiftright_server.infra.kafka.launcher import KafkaLauncher
from shiftright_server.infra.settings import Settings, accounts_path, to_env

log = structlog.get_logger("shiftright.supervisor")

#: Start order; ``down`` stops in reverse. Stream workers and sinks may run several
#: instances: ``streams``, ``streams-1``, … and ``sink``, ``sink-1``, …
ORDER = ("kafka", "warehouse", "streams", "sink", "notifier", "gateway", "dashboard", "simulator")
SCALED = ("streams", "sink")


def instance_names(kind: str, count: int) -> list[str]:
    """The component names of ``count`` instances: the first keeps the plain name."""
    return [kind if i == 0 else f"{kind}-{i}" for i in range(count)]


class ComponentFailed(RuntimeError):
    """A component exited or did not become ready; the message carries its log tail."""


@dataclass(frozen=True)
class Component:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


def kafka_launcher(settings: Settings) -> KafkaLauncher:
    k = settings.kafka
    return KafkaLauncher(
        settings.resolved_state_dir(), k.host, k.port, k.controller_port, k.version, k.heap
    )


def python_components(
    settings: Settings, simulator_args: Sequence[str] = ()
) -> dict[str, Component]:
    state = settings.resolved_state_dir()
    py = sys.executable
    ch = settings.clickhouse
    return {
        "warehouse": Component(
            "warehouse",
            [
                py,
                "-m",
                "shiftright_server.infra.warehouse",
                "--data-dir",
                str(state / "warehouse"),
                "--host",
                ch.host,
                "--port",
                str(ch.port),
                "--accounts",
                str(accounts_path(state)),
            ],
        ),
        **scaled_components(settings),
        "notifier": Component("notifier", [py, "-m", "shiftright_server.infra.ops.notifier"]),
        "gateway": Component("gateway", [py, "-m", "shiftright_server.infra.cli", "gateway"]),
        "dashboard": Component("dashboard", [py, "-m", "shiftright_server.infra.ops.dashboard"]),
        "simulator": Component(
            "simulator", [py, "-m", "shiftright_server.infra.cli", "simulate", *simulator_args]
        ),
    }


def start_rank(name: str) -> tuple[int, int]:
    """Where a component (or one instance of it) comes in the start order."""
    kind, _, index = name.partition("-")
    at = ORDER.index(kind) if kind in ORDER else len(ORDER)
    return at, int(index) if index.isdigit() else 0


def scaled_components(settings: Settings) -> dict[str, Component]:
    """``streams.workers`` stream workers, each its own static member, and
    ``sink.instances`` sinks, each reporting under its own name."""
    py = sys.executable
    found: dict[str, Component] = {}
    for i, name in enumerate(instance_names("streams", settings.streams.workers)):
        found[name] = Component(
            name,
            [py, "-m", "shiftright_server.streams"],
            {"SHIFTRIGHT_STREAMS__INSTANCE_ID": f"worker-{i}"},
        )
    for name in instance_names("sink", settings.sink.instances):
        found[name] = Component(
            name, [py, "-m", "shiftright_server.sinks"], {"SHIFTRIGHT_SINK__NAME": name}
        )
    return found


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = settings.resolved_state_dir()
        self.run_dir = self.state / "run"
        self.log_dir = self.state / "logs"

    def pid_path(self, name: str) -> Path:
        if name == "kafka":
            return kafka_launcher(self.settings).pid_path
        return self.run_dir / f"{name}.pid"

    def log_path(self, name: str) -> Path:
        return self.log_dir / ("kafka.log" if name == "kafka" else f"{name}.log")

    def pid(self, name: str) -> int | None:
        if name == "kafka":
            return kafka_launcher(self.settings).running_pid()
        try:
            pid = int(self.pid_path(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self, component: Component, env: dict[str, str] | None = None) -> int:
        """Start detached unless already running; returns the pid."""
        running = self.pid(component.name)
        if running:
            return running
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child_env = {**os.environ, **self.child_env(), **component.env, **(env or {})}
        with self.log_path(component.name).open("ab") as out:
            proc = subprocess.Popen(
                list(component.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=child_env,
            )
        self.pid_path(component.name).write_text(f"{proc.pid}\n")
        log.info("component_started", component=component.name, pid=proc.pid)
        return proc.pid

    def child_env(self) -> dict[str, str]:
        """Pass the effective settings on, so children agree with this CLI."""
        return {**to_env(self.settings), "SHIFTRIGHT_LOG_JSON": "true", "PYTHONUNBUFFERED": "1"}

    def wait_until(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if self.pid(name) is None:
                raise ComponentFailed(f"{name} exited during start-up\n{self.tail(name)}")
            time.sleep(0.2)
        raise ComponentFailed(f"{name} not ready after {timeout:.0f}s\n{self.tail(name)}")

    def stop(self, name: str, timeout: float = 20.0) -> bool:
        """SIGTERM the component's process group, SIGKILL after ``timeout``."""
        if name == "kafka":
            launcher = kafka_launcher(self.settings)
            if launcher.running_pid() is None:
                return False
            launcher.stop(timeout)
            return True
        pid = self.pid(name)
        if pid is None:
            self.pid_path(name).unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            log.warning("component_killed", component=name, pid=pid)
            _signal_group(pid, signal.SIGKILL)
        self.pid_path(name).unlink(missing_ok=True)
        log.info("component_stopped", component=name, pid=pid)
        return True

    def started(self) -> list[str]:
        """Every component with a pid file (or Kafka running), in start order."""
        names = {p.stem for p in self.run_dir.glob("*.pid")} if self.run_dir.exists() else set()
        if self.pid("kafka") is not None:
            names.add("kafka")
        return sorted(names, key=start_rank)

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return f"(no log at {self.log_path(name)})"
        return "\n".join(text[-lines:])


def warehouse_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/ping", timeout=1.0) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is not alive for our purposes.
    with contextlib.suppress(OSError, ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
