"""OTLP/HTTP logs, metrics and traces → events, field by field, through the real endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.logs.v1.logs_pb2 import SEVERITY_NUMBER_UNSPECIFIED, LogRecord

from tests.unit.gateway import otlp_payloads as p
from tests.unit.gateway.fakes import Harness

PROTOBUF = {"Content-Type": "application/x-protobuf"}
TS = datetime(2026, 11, 26, 11, 59, 30, 123000, UTC)


def sent(harness: Harness, kind: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for m in harness.producer.produced
        if m.topic == f"ns.events.{kind}.v1"
        for line in m.value.split(b"\n")
    ]


def envelope_ok(event: dict[str, Any]) -> None:
    assert (event["app"], event["env"], event["release"], event["host"], event["instance"]) == (
        "checkout",
        "prod",
        "1.4.2",
        "web-1",
        "web-1:8080",
    )
    assert event["attributes"]["telemetry.sdk.language"] == "java"
    assert event["attributes"]["process.pid"] == "4242"


def test_exception_log_becomes_error_event(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    body = p.logs_request(p.exception_record()).SerializeToString()
    response = client.post("/v1/logs", content=body, headers={**auth, **PROTOBUF})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    [error] = sent(harness, "error")
    envelope_ok(error)
    assert datetime.fromisoformat(error["ts"]) == TS
    assert error["exception_type"] == "KeyError"
    assert error["exception_message"] == "'sku'"
    assert error["stacktrace"] == p.PY_TRACE
    assert [(f["module"], f["function"], f["lineno"], f["in_app"]) for f in error["frames"]] == [
        ("shop.views", "checkout", 12, True),
        ("orm.q", "total", 99, False),
    ]
    assert error["frames"][0]["filename"] == "/app/shop/views.py"
    assert (error["level"], error["handled"], error["route"], error["user_id"]) == (
        "error",
        True,
        "/checkout",
        "u-7",
    )
    attrs = error["attributes"]
    assert attrs["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert attrs["span_id"] == "eee19b7ec3c1b174"
    assert attrs["otel.scope.name"] == "com.shop.Checkout" and attrs["otel.scope.version"] == "2.0"
    assert attrs["log.body"] == "checkout failed" and attrs["log.severity_text"] == "ERROR"
    assert attrs["cart.size"] == "3"


def test_escaped_exception_is_unhandled_and_type_comes_from_the_trace(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    record = LogRecord(time_unix_nano=p.T0, severity_number=SEVERITY_NUMBER_UNSPECIFIED)
    record.attributes.extend(
        [p.kv("exception.stacktrace", p.PY_TRACE), p.kv("exception.escaped", True)]
    )
    client.post(
        "/v1/logs", content=p.logs_request(record).SerializeToString(), headers={**auth, **PROTOBUF}
    )
    [error] = sent(harness, "error")
    assert (
        error["exception_type"] == "KeyError"
        and error["handled"] is False
        and error["level"] == "error"
    )


def test_http_request_log_becomes_usage_event(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    body = p.logs_request(p.request_record()).SerializeToString()
    assert client.post("/v1/logs", content=body, headers={**auth, **PROTOBUF}).status_code == 200
    [usage] = sent(harness, "usage")
    envelope_ok(usage)
    assert (usage["name"], usage["route"], usage["method"], usage["status_code"]) == (
        "POST /cart/{id}",
        "/cart/{id}",
        "POST",
        201,
    )
    assert usage["duration_ms"] == 42.5  # OTel seconds → our milliseconds
    assert usage["user_id"] == "u-7" and usage["attributes"]["url.path"] == "/cart/77"


def test_otlp_json_logs_with_hex_ids_and_partial_success(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    response = client.post("/v1/logs", json=p.LOGS_JSON, headers=auth)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"  # the plain log line maps to no event
    assert "neither an exception" in partial["errorMessage"]
    [error] = sent(harness, "error")
    assert (error["exception_type"], error["exception_message"], error["level"]) == (
        "TypeError",
        "x is undefined",
        "fatal",
    )
    assert [(f["function"], f["lineno"], f["in_app"]) for f in error["frames"]] == [
        ("<anonymous>", 284, False),
        ("Cart.total", 10, True),
    ]
    attrs = error["attributes"]
    assert attrs["trace_id"] == p.TRACE_ID.hex() and attrs["span_id"] == p.SPAN_ID.hex()
    assert attrs["tags"] == '["a",2]' and attrs["ok"] == "false" and attrs["process.pid"] == "4242"
    assert (error["app"], error["env"], error["host"]) == ("checkout", "prod", "web-1")


def test_hostmetrics_become_one_health_event(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    body = p.metrics_request().SerializeToString()
    response = client.post("/v1/metrics", content=body, headers={**auth, **PROTOBUF})
    assert response.status_code == 200
    assert not ExportMetricsServiceResponse.FromString(response.content).HasField("partial_success")
    [health] = sent(harness, "health")
    envelope_ok(health)
    assert datetime.fromisoformat(health["ts"]) == TS
    metrics = health["metrics"]
    assert metrics["system.cpu.utilization"] == 0.5  # busy: cpu0 0.25, cpu1 0.75 → mean
    assert metrics['system.cpu.utilization{cpu="cpu1",state="idle"}'] == 0.25
    assert metrics["system.memory.utilization"] == 0.625  # the "used" state
    assert metrics['system.memory.utilization{state="free"}'] == 0.375
    assert metrics["app.sessions.open"] == 318.0
    assert metrics['http.server.request.duration.count{http.route="/cart"}'] == 10.0
    assert metrics['http.server.request.duration.sum{http.route="/cart"}'] == 1.5
    assert metrics['http.server.request.duration.max{http.route="/cart"}'] == 0.5
    assert len(metrics) == 6 + 1 + 2 + 1 + 1 + 4


def test_metrics_json_and_the_same_result_as_protobuf(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    as_json = json_format.MessageToDict(p.metrics_request())
    assert client.post("/v1/metrics", json=as_json, headers=auth).status_code == 200
    client.post(
        "/v1/metrics", content=p.metrics_request().SerializeToString(), headers={**auth, **PROTOBUF}
    )
    first, second = sent(harness, "health")
    assert first["metrics"] == second["metrics"]


def test_server_span_is_usage_and_its_exception_an_error(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    body = p.traces_request().SerializeToString()
    response = client.post("/v1/traces", content=body, headers={**auth, **PROTOBUF})
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1  # the internal span
    [usage] = sent(harness, "usage")
    envelope_ok(usage)
    assert (
        usage["name"],
        usage["route"],
        usage["method"],
        usage["status_code"],
        usage["duration_ms"],
    ) == (
        "GET /cart/{id}",
        "/cart/{id}",
        "GET",
        500,
        42.5,
    )
    assert (
        usage["attributes"]["otel.status_code"] == "ERROR"
        and usage["attributes"]["otel.status_description"] == "boom"
    )
    [error] = sent(harness, "error")
    assert error["exception_type"] == "java.lang.IllegalStateException"
    assert error["handled"] is False and error["route"] == "/cart/{id}"
    assert [(f["module"], f["function"], f["lineno"]) for f in error["frames"]] == [
        ("com.shop.Web", "get", 10),
        ("com.shop.Cart", "lock", 42),
    ]
    assert error["attributes"]["trace_id"] == p.TRACE_ID.hex()


def test_otlp_from_another_app_is_forbidden(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    request = p.logs_request(p.exception_record())
    request.resource_logs[0].resource.attributes[0].value.string_value = "billing"
    response = client.post(
        "/v1/logs", content=request.SerializeToString(), headers={**auth, **PROTOBUF}
    )
    assert response.status_code == 403 and harness.producer.produced == []
    assert response.headers["content-type"] == "application/x-protobuf"
    assert b"'billing'" in response.content  # google.rpc.Status message


def test_otlp_without_service_name_takes_the_keys_app(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    request = p.logs_request(p.exception_record())
    del request.resource_logs[0].resource.attributes[:2]  # no service.name, no environment
    assert (
        client.post(
            "/v1/logs", content=request.SerializeToString(), headers={**auth, **PROTOBUF}
        ).status_code
        == 200
    )
    [error] = sent(harness, "error")
    assert (error["app"], error["env"]) == ("checkout", "prod")


def test_malformed_otlp_is_400_and_wrong_media_type_415(
    client: TestClient, auth: dict[str, str]
) -> None:
    garbage = client.post("/v1/logs", content=b"\xff\xff\xff", headers={**auth, **PROTOBUF})
    assert garbage.status_code == 400
    bad_json = client.post("/v1/metrics", json={"resourceMetrics": "nope"}, headers=auth)
    assert bad_json.status_code == 400 and "resourceMetrics" in bad_json.json()["message"]
    text = client.post("/v1/traces", content=b"x", headers={**auth, "Content-Type": "text/plain"})
    assert text.status_code == 415


def test_invalid_translated_events_are_partial_success(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    good = p.exception_record()
    bad = p.exception_record(**{"exception.type": "E" * 300})  # over the 200-character limit
    request = p.logs_request(good, bad)
    response = client.post(
        "/v1/logs", content=request.SerializeToString(), headers={**auth, **PROTOBUF}
    )
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert (
        "resourceLogs[0].scopeLogs[0].logRecords[1].exception_type"
        in answer.partial_success.error_message
    )
    assert len(sent(harness, "error")) == 1


def test_the_sdks_unknown_service_name_means_the_keys_app(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    request = p.logs_request(p.exception_record())
    request.resource_logs[0].resource.attributes[0].value.string_value = "unknown_service:java"
    body = request.SerializeToString()
    assert client.post("/v1/logs", content=body, headers={**auth, **PROTOBUF}).status_code == 200
    [error] = sent(harness, "error")
    assert error["app"] == "checkout"
    assert error["attributes"]["service.name"] == "unknown_service:java"


def test_rejected_metric_points_are_counted_as_data_points(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    request = p.metrics_request()
    request.resource_metrics[0].resource.attributes[3].value.string_value = "h" * 300  # host.name
    body = request.SerializeToString()
    response = client.post("/v1/metrics", content=body, headers={**auth, **PROTOBUF})
    answer = ExportMetricsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_data_points == 10  # every data point of the snapshot
    assert "host: String should have at most 200 characters" in answer.partial_success.error_message
    assert sent(harness, "health") == []
