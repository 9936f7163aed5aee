"""Run a single-node Apache Kafka 4.x broker locally, from Maven Central jars.

Lifecycle: ``resolve()`` (jars, once per version) → ``format()`` (storage, once per state
dir: only while ``meta.properties`` is absent) → ``start()`` (a detached ``java`` child in
its own session, so it outlives the CLI that launched it) → ``wait_ready()`` (until the
broker answers a metadata request) → ``stop()`` (SIGTERM, then SIGKILL). ``launch()`` runs
the whole chain and retries start-up a bounded number of times when it times out, which
quorum formation does now and then on a loaded 2-core machine.

Layout under ``state_dir``::

    kafka/lib-<version>/   runtime classpath (+ .complete marker)
    kafka/data/            log.dirs and the KRaft metadata log (meta.properties)
    kafka/server.properties, kafka/log4j2.xml, kafka/kafka.pid
    logs/kafka.log         the broker's own log (Log4j2, rolling)
    logs/kafka.out         JVM stdout/stderr: only crashes and JVM warnings land here

Errors::

    RuntimeError
    ├── JarResolutionError        mvn missing or could not fetch the jars (infra.kafka.jars)
    └── KafkaLaunchError          the broker could not be formatted, started or reached
        └── KafkaStartTimedOut    start-up did not finish in time; launch() retries it

Compatibility, checked on this machine with the flows of
tests/integration/test_kafka_launcher.py (confluent-kafka 2.16: idempotent lz4 producer
with ``partitioner=murmur2_random``, group consumer with manual commits; aiokafka 0.14.0,
which Faust 0.15 rides on: idempotent lz4 producer, group consumer, manual commits):
Kafka 4.0.1, 4.1.1, 4.1.2, 4.2.2, 4.3.1 and 4.4.0 all pass. Kafka 4.0 removed the
pre-2.1 protocol versions, but aiokafka 0.14 negotiates through ApiVersions and stays
inside that floor. The default stays 4.1.1, as in ``infra.settings.KafkaSettings``.

Measured here (2 cores, other services running; jar resolution excluded): cold start
(format + start + ready) 5.8-9.2 s, of which format 2.3-4 s (two short JVMs); warm start
on a formatted state dir 3.3-6.2 s; stop 0.6 s. First resolution from an empty ~/.m2
took 33 s, from a filled one 2-3 s.

Topics are not auto-created (``auto.create.topics.enable=false``, see ``config``): create
them with ``infra.kafka.topics.ensure_topics`` or let Faust declare its own.

Kafka exits with 143 (128+SIGTERM) after a clean SIGTERM shutdown. "Ready" means the
broker answers metadata *and* the group coordinator answers, so the first consumer group
does not meet COORDINATOR_NOT_AVAILABLE; an idempotent producer may still log one
"Coordinator load in progress: retrying" warning while the producer-id block arrives.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka.admin import AdminClient
from shiftright_server.infra.kafka.config import jvm_options, log4j2_xml, server_properties
from shiftright_server.infra.kafka.jars import resolve_jars
from shiftright_server.infra.kafka.process import (
    log_sizes,
    log_tail,
    port_bindable,
    port_open,
    read_pid,
    runs_with_arg,
    send_signal,
    terminate_foreign,
)

_log = structlog.get_logger(__name__)
_PROBE_GROUP = "shiftright-launcher-ready-probe"
_TIMEOUT_HINTS = ("timeoutexception", "timed out")
_quiet = logging.getLogger("infra.kafka.librdkafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class KafkaLaunchError(RuntimeError):
    """The broker could not be formatted, started or reached."""


class KafkaStartTimedOut(KafkaLaunchError):
    """Start-up did not finish in time (typically quorum formation); worth a retry."""


class KafkaLauncher:
    """Owns one local broker: its files under ``state_dir`` and its process."""

    def __init__(
        self,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 19092,
        controller_port: int = 19093,
        version: str = "4.1.1",
        heap: str = "512m",
        partitions: int = 8,
        *,
        node_id: int = 1,
        voters: str | None = None,
        replicas: int = 1,
        cluster_id: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.version = version
        self.heap = heap
        self.partitions = partitions
        self.node_id = node_id
        self.voters = voters
        self.replicas = replicas
        self.cluster_id = cluster_id  # None: a new one when formatting
        self._proc: subprocess.Popen[bytes] | None = None
        # Where this run's output starts in each log, so errors quote this run only.
        self._log_marks: dict[Path, int] = {}

    # -- paths -------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def lib_dir(self) -> Path:
        return self.kafka_dir / f"lib-{self.version}"

    @property
    def data_dir(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def config_path(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.kafka_dir / "log4j2.xml"

    @property
    def pid_path(self) -> Path:
        return self.kafka_dir / "kafka.pid"

    @property
    def broker_log(self) -> Path:
        return self.state_dir / "logs" / "kafka.log"

    @property
    def console_log(self) -> Path:
        return self.state_dir / "logs" / "kafka.out"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    # -- lifecycle ---------------------------------------------------------------------

    def resolve(self) -> Path:
        """The folder of runtime jars; fetched with Maven only the first time."""
        return resolve_jars(self.lib_dir, self.version)

    def write_config(self) -> Path:
        """(Re)write server.properties and log4j2.xml; returns server.properties."""
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        self.broker_log.parent.mkdir(parents=True, exist_ok=True)
        self.log4j_path.write_text(log4j2_xml(log_file=self.broker_log))
        text = server_properties(
            data_dir=self.data_dir,
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            partitions=self.partitions,
            node_id=self.node_id,
            voters=self.voters,
            replicas=self.replicas,
        )
        self.config_path.write_text(text)
        return self.config_path

    def format(self) -> bool:
        """Format storage unless already formatted; True when it formatted now."""
        if (self.data_dir / "meta.properties").is_file():
            return False
        config = self.write_config()
        cluster_id = self.cluster_id or self._storage_tool("random-uuid").split()[-1]
        self._storage_tool("format", "-t", cluster_id, "-c", str(config))
        _log.info("kafka_storage_formatted", cluster_id=cluster_id, data_dir=str(self.data_dir))
        return True

    def start(self) -> subprocess.Popen[bytes]:
        """Start the broker detached from our session; returns at once (see wait_ready)."""
        if (pid := self.running_pid()) is not None:
            raise KafkaLaunchError(f"a broker for {self.state_dir} already runs as pid {pid}")
        self._check_ports_free()
        lib = self.resolve()
        config = self.write_config()
        cmd = [*self._java(lib, self.heap), "kafka.Kafka", str(config)]
        self._log_marks = log_sizes([self.broker_log, self.console_log])
        with self.console_log.open("ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.kafka_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        _log.info("kafka_started", pid=self._proc.pid, bootstrap=self.bootstrap)
        return self._proc

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until the broker answers metadata; raise with its log tail otherwise."""
        deadline = time.monotonic() + timeout
        # librdkafka takes a logging.Logger under "logger"; the stub's config type omits it
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "logger": _quiet}
        admin = AdminClient(conf)
        while True:
            if self._proc is not None and (code := self._proc.poll()) is not None:
                raise self._death_error(code)
            if (
                port_open(self.host, self.port)
                and self._answers_metadata(admin)
                and _serves_groups(admin)
            ):
                _log.info("kafka_became_ready", bootstrap=self.bootstrap)
                return
            if time.monotonic() > deadline:
                raise KafkaStartTimedOut(
                    f"broker at {self.bootstrap} not ready after {timeout:.0f}s\n{self._tail()}"
                )
            time.sleep(0.25)

    def launch(self, attempts: int = 3, timeout: float = 90.0) -> subprocess.Popen[bytes]:
        """resolve, format, start and wait_ready, retrying start-up time-outs."""
        self._check_ports_free()  # before minutes of jar download, not after
        self.resolve()
        self.format()
        for attempt in range(1, attempts + 1):
            began = time.monotonic()
            proc = self.start()
            try:
                self.wait_ready(timeout)
            except KafkaStartTimedOut as exc:
                self.stop()
                _log.warning("kafka_start_timed_out", attempt=attempt, attempts=attempts)
                if attempt == attempts:
                    raise exc
                continue
            except BaseException:
                self.stop()
                raise
            _log.info("kafka_launched", seconds=round(time.monotonic() - began, 2))
            return proc
        raise AssertionError("unreachable")

    def running_pid(self) -> int | None:
        """The pid of a live broker on this state dir, started by us or another process."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        pid = read_pid(self.pid_path)
        return pid if pid is not None and runs_with_arg(pid, str(self.config_path)) else None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the broker, wait up to ``timeout``, then SIGKILL; returns its exit code."""
        if self._proc is None:
            self._stop_by_pid_file(timeout)
            return None
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            send_signal(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _log.warning("kafka_stop_timed_out", pid=proc.pid, timeout=timeout)
                send_signal(proc.pid, signal.SIGKILL)
                proc.wait()
        self.pid_path.unlink(missing_ok=True)
        _log.info("kafka_stopped", pid=proc.pid, returncode=proc.returncode)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the broker we started, as a crash would (no controlled shutdown)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        send_signal(proc.pid, signal.SIGKILL)
        proc.wait()
        self.pid_path.unlink(missing_ok=True)
        _log.info("kafka_killed", pid=proc.pid)

    # -- internals ---------------------------------------------------------------------

    def _java(self, lib: Path, heap: str) -> list[str]:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise KafkaLaunchError("java not found (need Java 17+ on PATH or JAVA_HOME)")
        return [
            java,
            *jvm_options(heap),
            "-Djava.awt.headless=true",
            # Log4j's own hook would close the log before Kafka's shutdown hook has
            # written how the shutdown went; the file appender flushes every line anyway.
            "-Dlog4j2.shutdownHookEnabled=false",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            f"-Dkafka.logs.dir={self.broker_log.parent}",
            "-cp",
            f"{lib}/*",
        ]

    def _storage_tool(self, *args: str) -> str:
        self.write_config()
        cmd = [*self._java(self.resolve(), "256m"), "kafka.tools.StorageTool", *args]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaLaunchError(f"StorageTool {args[0]} did not finish in 120s") from exc
        if done.returncode != 0:
            raise KafkaLaunchError(
                f"StorageTool {args[0]} failed (exit {done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{self._tail()}"
            )
        return done.stdout

    def _check_ports_free(self) -> None:
        for port in (self.port, self.controller_port):
            if not port_bindable(self.host, port):
                raise KafkaLaunchError(
                    f"port {self.host}:{port} is in use; is another broker running? "
                    "Pick other ports or stop it."
                )

    def _answers_metadata(self, admin: AdminClient) -> bool:
        try:
            return bool(admin.list_topics(timeout=2).brokers)
        except Exception:  # KafkaException while the broker is still coming up
            return False

    def _death_error(self, code: int) -> KafkaLaunchError:
        self._proc = None
        self.pid_path.unlink(missing_ok=True)
        tail = self._tail()
        kind = (
            KafkaStartTimedOut
            if any(hint in tail.lower() for hint in _TIMEOUT_HINTS)
            else KafkaLaunchError
        )
        _log.error("kafka_died", returncode=code, retryable=kind is KafkaStartTimedOut)
        return kind(f"broker exited with code {code} during start-up\n{tail}")

    def _tail(self) -> str:
        marks = self._log_marks or log_sizes([self.broker_log, self.console_log])
        return log_tail(marks) or f"(nothing logged under {self.broker_log.parent} by this run)"

    def _stop_by_pid_file(self, timeout: float) -> None:
        """Stop a broker started by another process on this state dir, if one runs."""
        pid = self.running_pid()
        if pid is not None:
            terminate_foreign(pid, str(self.config_path), timeout)
            _log.info("kafka_stopped", pid=pid)
        self.pid_path.unlink(missing_ok=True)


def _serves_groups(admin: AdminClient) -> bool:
    """True once the group coordinator answers (this creates __consumer_offsets).

    Without it, the first consumer group after start-up (a Faust worker) meets
    COORDINATOR_NOT_AVAILABLE and logs errors while the offsets topic is being made.
    """
    try:
        admin.describe_consumer_groups([_PROBE_GROUP], request_timeout=5)[_PROBE_GROUP].result()
    except Exception:  # KafkaException: coordinator not available or still loading
        return False
    return True
