"""``python -m bench.gateway``: what the ingest gateway accepts, against Kafka alone.

    .venv/bin/python -m bench.gateway [--seconds 15] [--concurrency 32] [--workers 1] [--kafka HOST:PORT]

Starts a broker on free ports (unless ``--kafka``) and ``shiftright gateway`` as its own
process, then for each scenario sends for ``--seconds`` from ``--concurrency`` concurrent
HTTP/1.1 keep-alive connections (a minimal asyncio client) and reports requests/s and events/s acknowledged
(2xx: Kafka has the events), refusals (429/503), and request latency p50/p99:

- ``json ×1``: one JSON event per request;
- ``json ×100``: a JSON list of 100 events per request;
- ``otlp-logs ×100``: OTLP/HTTP protobuf, 100 exception log records per request.

Baseline, same run: the same 100-event batches produced straight to Kafka with
confluent-kafka (our producer settings, NDJSON batch messages) from ``--concurrency``
asyncio tasks, each waiting for the delivery report of its batch before sending the next,
as the gateway waits before answering. The load generator shares the machine's cores with
the gateway; the figures say what one gateway process does on this machine, not a limit
of the design. Nothing is asserted; results also go to ``bench/results/gateway-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).parent / "results"


@dataclass
class Figures:
    scenario: str
    events_per_request: int
    seconds: float
    requests: int
    events: int
    refused: dict[str, int]
    p50_ms: float
    p99_ms: float
    gateway_cpu: float | None = None  # cores the gateway process used
    client_cpu: float | None = None  # cores this load generator used
    kafka_cpu: float | None = None  # cores the broker used (when started here)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def eps(self) -> float:
        return self.events / self.seconds


def _event(i: int) -> dict[str, Any]:
    return {
        "kind": "usage",
        "name": f"feature.{i % 20}",
        "route": f"/api/f{i % 20}",
        "method": "POST",
        "status_code": 200,
        "duration_ms": float(i % 300),
        "user_id": f"u{i % 5000}",
        "customer_id": f"c{i % 50}",
    }


def _otlp_logs(n: int) -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(key: str, value: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=value))

    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(
        [kv("service.name", "bench"), kv("deployment.environment.name", "prod")]
    )
    scope = rl.scope_logs.add()
    trace = "Traceback (most recent call last):\n  File \"/app/shop/cart.py\", line 42, in add\n    x()\nKeyError: 'sku'\n"
    for i in range(n):
        record = scope.log_records.add(time_unix_nano=time.time_ns(), severity_number=17)
        record.attributes.extend(
            [
                kv("exception.type", f"KeyError{i % 7}"),
                kv("exception.message", "'sku'"),
                kv("exception.stacktrace", trace),
                kv("http.route", "/cart"),
            ]
        )
    return request.SerializeToString()


class _Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: a load generator that costs
    a few µs a request, so the gateway (not the client) is what gets measured."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, head: bytes, body: bytes) -> int:
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


async def _drive(
    port: int,
    token: str,
    path: str,
    body: bytes,
    ctype: str,
    per_request: int,
    seconds: float,
    concurrency: int,
) -> Figures:
    latencies: list[float] = []
    refused: Counter[str] = Counter()
    done = 0
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    connections = [await _Connection.open(port) for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds

    async def worker(connection: _Connection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status = await connection.post(head, body)
            if status == 200:
                latencies.append(time.perf_counter() - start)
                done += 1
            else:
                refused[str(status)] += 1
                if status in (429, 503):
                    await asyncio.sleep(0.05)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return Figures(
        path, per_request, elapsed, done, done * per_request, dict(refused), *_pcts(latencies)
    )


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU of a process and its children (the gateway's worker processes)."""
    return _cpu(proc) + sum(_cpu(child) for child in proc.children(recursive=True))


def _pcts(latencies: list[float]) -> tuple[float, float]:
    if len(latencies) < 2:
        return (float("nan"), float("nan"))
    cuts = statistics.quantiles(latencies, n=100)
    return (cuts[49] * 1000, cuts[98] * 1000)


async def _baseline(bootstrap: str, namespace: str, seconds: float, concurrency: int) -> Figures:
    """The same batches, pre-serialized, produced straight to Kafka, each awaited like a
    gateway request: what Kafka and librdkafka cost without HTTP and validation."""
    from confluent_kafka import KafkaError, Message, Producer
    from shiftright_server.producers.emitter import producer_config
    from shiftright_server.schemas import topics, wire
    from shiftright_server.schemas.events import UsageEvent, partition_key

    producer = Producer(producer_config(bootstrap, **{"linger.ms": 5}))
    loop = asyncio.get_running_loop()
    topic = topics.named(topics.EVENTS_USAGE, namespace)
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds
    stop = False

    def poller() -> None:
        while not stop:
            producer.poll(0.05)

    # The messages the gateway makes of one 100-event request, built once, outside the clock.
    groups: dict[bytes, list[bytes]] = {}
    for i in range(100):
        event = UsageEvent.model_validate({**_event(i), "app": "bench", "env": "prod"})
        groups.setdefault(partition_key(event), []).append(event.model_dump_json().encode())
    messages = [(key, value) for key, group in groups.items() for value in wire.pack(group)]

    def settle(
        fut: asyncio.Future[KafkaError | None],
    ) -> Callable[[KafkaError | None, Message], None]:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(fut.set_result, err)

        return delivered

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            pending: list[asyncio.Future[KafkaError | None]] = [
                loop.create_future() for _ in messages
            ]
            for fut, (key, value) in zip(pending, messages, strict=True):
                producer.produce(
                    topic,
                    value,
                    key,
                    headers=wire.BATCH_HEADERS,  # type: ignore[arg-type]  # (str, bytes) pairs are a form produce() takes; its stub's list type is invariant
                    on_delivery=settle(fut),
                )
            await asyncio.gather(*pending)
            latencies.append(time.perf_counter() - start)
            done += 1

    thread = asyncio.to_thread(poller)
    poll_task = asyncio.ensure_future(thread)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    stop = True
    await poll_task
    producer.flush(10)
    return Figures("confluent-kafka direct", 100, elapsed, done, done * 100, {}, *_pcts(latencies))


def _cli(env: dict[str, str], *args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "shiftright_server.infra.cli", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.strip()


def _wait_healthy(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gateway did not become healthy")


def run(args: argparse.Namespace) -> list[Figures]:
    from shiftright_server.infra.kafka.topics import create_topics
    from shiftright_server.infra.settings import KafkaSettings, Settings

    from tests.integration.kafka_fixture import free_ports, start_kafka, stop_kafka

    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    launcher = None
    bootstrap = args.kafka
    if bootstrap is None:
        launcher = start_kafka(tmp / "kafka")
        bootstrap = launcher.bootstrap
    namespace = f"bgw{uuid.uuid4().hex[:6]}"
    create_topics(Settings(namespace=namespace, kafka=KafkaSettings(bootstrap=bootstrap)))
    [port] = free_ports(1)
    env = {
        **os.environ,
        "SHIFTRIGHT_STATE_DIR": str(tmp / "state"),
        "SHIFTRIGHT_NAMESPACE": namespace,
        "SHIFTRIGHT_KAFKA__BOOTSTRAP": bootstrap,
        "SHIFTRIGHT_LOG_JSON": "true",
    }
    token = _cli(env, "keys", "create", "--app", "bench", "--env", "prod")
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shiftright_server.infra.cli",
            "gateway",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    results: list[Figures] = []
    try:
        _wait_healthy(url)
        proc = psutil.Process(gateway.pid)
        broker = psutil.Process(launcher.running_pid()) if launcher else None
        scenarios = [
            ("/v1/events", json.dumps(_event(0)).encode(), "application/json", 1),
            (
                "/v1/events",
                json.dumps([_event(i) for i in range(100)]).encode(),
                "application/json",
                100,
            ),
            ("/v1/logs", _otlp_logs(100), "application/x-protobuf", 100),
        ]
        for path, body, ctype, n in scenarios:
            asyncio.run(_drive(port, token, path, body, ctype, n, 2, args.concurrency))  # warm-up
            before = _tree_cpu(proc), _cpu(psutil.Process()), _cpu(broker) if broker else 0.0
            figures = asyncio.run(
                _drive(port, token, path, body, ctype, n, args.seconds, args.concurrency)
            )
            figures.gateway_cpu = (_tree_cpu(proc) - before[0]) / figures.seconds
            figures.client_cpu = (_cpu(psutil.Process()) - before[1]) / figures.seconds
            if broker:
                figures.kafka_cpu = (_cpu(broker) - before[2]) / figures.seconds
            figures.scenario = f"{'json' if path == '/v1/events' else 'otlp-logs'} ×{n}"
            results.append(figures)
        started = _cpu(psutil.Process()), _cpu(broker) if broker else 0.0
        direct = asyncio.run(_baseline(bootstrap, namespace, args.seconds, args.concurrency))
        direct.client_cpu = (_cpu(psutil.Process()) - started[0]) / direct.seconds
        if broker:
            direct.kafka_cpu = (_cpu(broker) - started[1]) / direct.seconds
        results.append(direct)
    finally:
        gateway.terminate()
        gateway.wait(20)
        if launcher is not None:
            stop_kafka(launcher)
    return results


def report(results: list[Figures], args: argparse.Namespace) -> None:
    head = f"{'scenario':<24}{'req/s':>9}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
    print(f"\n{head}{'gw CPU':>8}{'client CPU':>11}{'Kafka CPU':>10}  refused")
    for f in results:
        cpus = "".join(
            f"{v:>{w}.2f}" if v is not None else f"{'—':>{w}}"
            for v, w in ((f.gateway_cpu, 8), (f.client_cpu, 11), (f.kafka_cpu, 10))
        )
        row = f"{f.scenario:<24}{f.rps:>9,.0f}{f.eps:>10,.0f}{f.p50_ms:>8.1f}{f.p99_ms:>8.1f}"
        print(f"{row}{cpus}  {f.refused or ''}")
    base = results[-1].eps
    for f in results[:-1]:
        print(f"  {f.scenario}: {f.eps / base:.2f}× the direct producer's events/s")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"gateway-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": [asdict(f) | {"rps": f.rps, "eps": f.eps} for f in results],
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--kafka", default=None, help="An existing broker; default: start one")
    parser.add_argument("--workers", type=int, default=1, help="Gateway processes")
    args = parser.parse_args()
    report(run(args), args)


if __name__ == "__main__":
    main()
