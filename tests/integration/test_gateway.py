"""The ingest gateway for real: `shiftright gateway` on a free port, the real broker, the
stream worker and the sink, ClickHouse at the end.

Real clients: httpx and curl post JSON batches; the OpenTelemetry SDK's OTLP/HTTP exporters
send logs with exceptions, host metrics and server spans; a key revoked with the CLI is
refused; schemathesis fuzzes the served OpenAPI spec and must see no 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from shiftright_server.infra.ops.supervisor import Component, Supervisor
from shiftright_server.infra.settings import GatewaySettings, KafkaSettings, Settings

from tests.builders import event
from tests.integration.conftest import sql_on, wait_for
from tests.integration.pipeline import Pipeline
from tests.integration.warehouse_fixture import free_port

NOTHING: dict[str, str] = {}  # looking a key up in it raises KeyError

Sql = Callable[[str], list[tuple[Any, ...]]]


@dataclass
class Running:
    url: str
    token: str
    key_id: str
    settings: Settings
    supervisor: Supervisor

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = self.supervisor.child_env()
        return subprocess.run(
            [sys.executable, "-m", "shiftright_server.infra.cli", "gateway", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _listening(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


@contextlib.contextmanager
def serving(settings: Settings, ready: Callable[[str], bool] = _healthy) -> Iterator[Running]:
    """`shiftright gateway` on a free port, with a key for checkout/prod made by the CLI."""
    supervisor = Supervisor(settings)
    port = free_port()
    running = Running(f"http://127.0.0.1:{port}", "", "", settings, supervisor)
    created = running.cli("keys", "create", "--app", "checkout", "--env", "prod", "--label", "it")
    assert created.returncode == 0, created.stderr
    running.token = created.stdout.strip()
    running.key_id = running.token.split("_")[1]
    argv = [sys.executable, "-m", "shiftright_server.infra.cli", "gateway", "--port", str(port)]
    supervisor.start(Component("gateway", argv))
    try:
        supervisor.wait_until("gateway", lambda: ready(running.url), timeout=30)
        yield running
    finally:
        supervisor.stop("gateway", timeout=15)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Running]:
    """The gateway and the sink: these tests read the raw tables, not the worker's output."""
    pipeline = Pipeline(settings)
    pipeline.start("sink")
    try:
        with serving(settings) as running:
            yield running
    finally:
        pipeline.stop()


def _count(sql: Sql, table: str, where: str = "1") -> int:
    return int(sql(f"SELECT count() FROM {table} WHERE {where}")[0][0])


def test_json_batches_from_http_clients_land_in_clickhouse(gateway: Running, sql: Sql) -> None:
    base = datetime.now(UTC) - timedelta(minutes=3)
    kinds = ("usage", "error", "health", "change")
    batches = []
    for b in range(10):  # 10 batches × 50 events × 4 kinds
        batch = []
        for i in range(50):
            ts = base + timedelta(milliseconds=b * 1000 + i)
            batch += [
                event(
                    "usage",
                    ts,
                    name=f"feature.{i % 5}",
                    route="/cart/{id}",
                    user_id=f"u{i}",
                    duration_ms=float(i),
                ),
                event("error", ts, exception_type=f"Error{i % 3}"),
                event(
                    "health", ts, host=f"web-{i % 2}", metrics={"system.cpu.utilization": i / 100}
                ),
                event("change", ts, change_type="flag", name=f"flag-{i % 2}", value="on"),
            ]
        batches.append(batch)
    with httpx.Client(base_url=gateway.url, headers=gateway.auth(), timeout=30) as client:
        for batch in batches[:-1]:
            response = client.post("/v1/events", json=batch)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == 200
    curl = subprocess.run(
        [
            "curl",
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            f"Authorization: Bearer {gateway.token}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            json.dumps(batches[-1]),
            f"{gateway.url}/v1/events",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    body, status = curl.stdout.rsplit("\n", 1)
    assert status == "200", curl.stdout + curl.stderr
    assert json.loads(body)["accepted"] == 200

    want = dict.fromkeys(kinds, 500)
    wait_for(
        lambda: {k: _count(sql, f"events_{k}") for k in kinds} == want,
        120,
        lambda: f"500 rows per kind (got { ({k: _count(sql, f'events_{k}') for k in kinds}) })",
    )
    row = sql(
        "SELECT app, env, route, user_id, duration_ms FROM events_usage WHERE user_id = 'u7' LIMIT 1"
    )[0]
    assert row == ("checkout", "prod", "/cart/{id}", "u7", 7.0)
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'shiftright_gateway_requests_total{route="/v1/events",status="200"} 10.0' in metrics
    assert 'shiftright_gateway_events_accepted_total{kind="usage"} 500.0' in metrics


def test_opentelemetry_sdk_logs_metrics_and_spans_land_as_rows(gateway: Running, sql: Sql) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    resource = Resource.create(
        {
            "service.name": "checkout",
            "deployment.environment.name": "prod",
            "service.version": "2.0.1",
            "host.name": "otel-host-1",
        }
    )
    headers = gateway.auth()
    # Logs: Python logging → OTel LoggingHandler → OTLP/HTTP protobuf exporter.
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{gateway.url}/v1/logs", headers=headers)
        )
    )
    logger = logging.getLogger("shop.checkout.otel")
    logger.propagate = False
    with (
        warnings.catch_warnings()
    ):  # the SDK's handler is deprecated in favour of a contrib package
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=logs)
    logger.addHandler(handler)
    try:
        for i in range(3):
            try:
                NOTHING["sku"] if i % 2 else int(f"not a number {i}")
            except (KeyError, ValueError):
                logger.exception("checkout failed", extra={"cart.size": i})
    finally:
        logger.removeHandler(handler)
    assert logs.force_flush(10_000)
    # Metrics: observable gauges as the hostmetrics receiver names them.
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{gateway.url}/v1/metrics", headers=headers),
        export_interval_millis=60_000,
    )
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meters.get_meter("hostmetrics")

    def cpu(_: CallbackOptions) -> list[Observation]:
        return [
            Observation(v, {"cpu": c, "state": s})
            for c, idle in (("cpu0", 0.6), ("cpu1", 0.8))
            for s, v in (("idle", idle), ("user", 1 - idle))
        ]

    meter.create_observable_gauge("system.cpu.utilization", [cpu])
    meter.create_observable_gauge("system.memory.utilization", [lambda _: [Observation(0.42)]])
    assert meters.force_flush(10_000)
    # Traces: a server span with an exception recorded on it.
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{gateway.url}/v1/traces", headers=headers))
    )
    tracer = tracer_provider.get_tracer("shop.web")
    with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER) as span:
        span.set_attributes(
            {
                "http.request.method": "GET",
                "http.route": "/orders/{id}",
                "http.response.status_code": 500,
            }
        )
        try:
            raise TimeoutError("db timeout")
        except TimeoutError as exc:
            span.record_exception(exc)
    assert tracer_provider.force_flush(10_000)
    for provider in (logs, meters, tracer_provider):
        provider.shutdown()

    wait_for(
        lambda: (
            _count(sql, "events_error", "host = 'otel-host-1'") == 4
            and _count(sql, "events_health", "host = 'otel-host-1'") == 2  # flush, then shutdown
            and _count(sql, "events_usage", "host = 'otel-host-1'") == 1
        ),
        120,
        lambda: (
            "OTel rows: "
            + str(
                [
                    _count(sql, t, "host = 'otel-host-1'")
                    for t in ("events_error", "events_health", "events_usage")
                ]
            )
        ),
    )
    errors = sql(
        "SELECT exception_type, exception_message, release, level, handled, frames.function, "
        "attributes['cart.size'], attributes['log.body'] FROM events_error "
        "WHERE host = 'otel-host-1' AND attributes['log.body'] != '' ORDER BY exception_type, attributes['cart.size']"
    )
    assert [(e[0], e[2], e[3], e[4], e[6], e[7]) for e in errors] == [
        ("KeyError", "2.0.1", "error", True, "1", "checkout failed"),
        ("ValueError", "2.0.1", "error", True, "0", "checkout failed"),
        ("ValueError", "2.0.1", "error", True, "2", "checkout failed"),
    ]
    assert errors[1][1] == "invalid literal for int() with base 10: 'not a number 0'"
    assert "test_opentelemetry_sdk_logs_metrics_and_spans_land_as_rows" in errors[0][5]
    [(cpu_busy, memory, per_state)] = sql(
        "SELECT metrics['system.cpu.utilization'], metrics['system.memory.utilization'], "
        'metrics[\'system.cpu.utilization{cpu="cpu0",state="idle"}\'] FROM events_health '
        "WHERE host = 'otel-host-1' LIMIT 1"
    )
    assert (round(cpu_busy, 6), memory, per_state) == (0.3, 0.42, 0.6)
    [usage] = sql(
        "SELECT name, route, method, status_code, duration_ms > 0 FROM events_usage WHERE host = 'otel-host-1'"
    )
    assert usage == ("GET /orders/{id}", "/orders/{id}", "GET", 500, True)
    [span_error] = sql(
        "SELECT exception_type, exception_message, route FROM events_error "
        "WHERE host = 'otel-host-1' AND exception_type = 'TimeoutError'"
    )
    assert span_error == ("TimeoutError", "db timeout", "/orders/{id}")


def test_revoked_key_is_refused(gateway: Running) -> None:
    one = [event("usage", datetime.now(UTC))]
    with httpx.Client(base_url=gateway.url, headers=gateway.auth(), timeout=30) as client:
        assert client.post("/v1/events", json=one).status_code == 200
        foreign = client.post("/v1/events", json=[event("usage", datetime.now(UTC), app="billing")])
        assert foreign.status_code == 403 and foreign.json()["errors"][0]["path"] == "[0].app"
        revoked = gateway.cli("keys", "revoke", gateway.key_id)
        assert revoked.returncode == 0, revoked.stderr
        listed = gateway.cli("keys", "list")
        assert gateway.key_id in listed.stdout and "revoked" in listed.stdout
        refused = client.post("/v1/events", json=one)
        assert refused.status_code == 401 and refused.json()["error"] == "key_revoked"
    audited = sql_on(gateway.settings)(
        "SELECT action, target, via FROM audit_log WHERE action LIKE 'key.%' ORDER BY ts"
    )
    assert audited == [("key.create", gateway.key_id, "cli"), ("key.revoke", gateway.key_id, "cli")]


def test_schemathesis_finds_no_server_errors(gateway: Running, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    started = time.monotonic()
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{gateway.url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--seed",
            "20261126",
            "--workers",
            "1",
            "--max-time",
            "40",
            "--header",
            f"Authorization: Bearer {gateway.token}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    output = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, output
    summary = json.loads(report.read_text())
    assert summary["test_cases"]["generated"] >= 200, output
    assert summary["test_cases"]["with_failures"] == 0 and summary["failures"] == [], output
    assert summary["errors"] == [] and summary["operations"]["tested"] == 8, output
    assert time.monotonic() - started < 90


def test_unreachable_broker_is_503_with_retry_after(tmp_path: Path) -> None:
    """No broker at the bootstrap address: the first request waits at most the ack timeout,
    then librdkafka's "all brokers down" makes every request a prompt 503."""
    settings = Settings(
        state_dir=tmp_path / "state",
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"),
        gateway=GatewaySettings(ack_timeout_seconds=3.0),
    )
    with serving(settings, ready=_listening) as running:
        one = [event("usage", datetime.now(UTC))]
        with httpx.Client(base_url=running.url, headers=running.auth(), timeout=30) as client:
            first = client.post("/v1/events", json=one)
            assert first.status_code == 503 and first.headers["retry-after"] == "5", first.text
            wait_for(
                lambda: client.get("/healthz").status_code == 503,
                15,
                "healthz to report Kafka down",
            )
            started = time.monotonic()
            refused = client.post("/v1/events", json=one)
            assert refused.status_code == 503 and time.monotonic() - started < 1.0
            assert "unreachable" in refused.json()["message"]
            metrics = client.get("/metrics").text
            assert 'shiftright_gateway_rejects_total{reason="kafka_unavailable"}' in metrics
            assert "shiftright_gateway_kafka_up 0.0" in metrics


def test_back_pressure_is_429_with_retry_after_and_bounded(settings: Settings) -> None:
    """With at most 150 events waiting for Kafka, 20 concurrent 100-event requests cannot all
    be taken at once: some get 429 + Retry-After; every 200 is stored; nothing is left over."""
    bounded = settings.model_copy(update={"gateway": GatewaySettings(max_pending_events=150)})
    with serving(bounded) as running:

        async def burst() -> list[httpx.Response]:
            batch = [event("usage", datetime.now(UTC), name=f"n{i}") for i in range(100)]
            async with httpx.AsyncClient(
                base_url=running.url, headers=running.auth(), timeout=30
            ) as client:
                return await asyncio.gather(
                    *(client.post("/v1/events", json=batch) for _ in range(20))
                )

        responses = asyncio.run(burst())
        answers = [r.status_code for r in responses]
        assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 429)
        assert set(answers) <= {200, 429} and answers.count(429) > 0 and answers.count(200) > 0, (
            answers
        )
        metrics = httpx.get(f"{running.url}/metrics").text
        assert (
            f'shiftright_gateway_rejects_total{{reason="backpressure"}} {answers.count(429)}.0'
            in metrics
        )
        assert "shiftright_gateway_pending_events 0.0" in metrics
        accepted = 'shiftright_gateway_events_accepted_total{kind="usage"} '
        assert f"{accepted}{answers.count(200) * 100}.0" in metrics
