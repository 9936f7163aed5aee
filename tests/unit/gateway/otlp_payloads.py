"""OTLP requests as an OpenTelemetry SDK sends them: protobuf messages and OTLP/JSON."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import (
    SEVERITY_NUMBER_ERROR,
    SEVERITY_NUMBER_INFO,
    LogRecord,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

T0 = 1_795_694_370_123_456_789  # 2026-11-26T11:59:30.123456789Z
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")

PY_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/shop/views.py", line 12, in checkout\n'
    "    cart.total()\n"
    '  File "/usr/lib/python3.11/site-packages/orm/q.py", line 99, in total\n'
    "    raise KeyError(k)\n"
    "KeyError: 'sku'\n"
)


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


RESOURCE = [
    kv("service.name", "checkout"),
    kv("deployment.environment.name", "prod"),
    kv("service.version", "1.4.2"),
    kv("host.name", "web-1"),
    kv("service.instance.id", "web-1:8080"),
    kv("telemetry.sdk.language", "java"),
    kv("process.pid", 4242),
]


def logs_request(*records: LogRecord) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(RESOURCE)
    sl = rl.scope_logs.add()
    sl.scope.name = "com.shop.Checkout"
    sl.scope.version = "2.0"
    sl.log_records.extend(records)
    return request


def exception_record(**extra: Any) -> LogRecord:
    record = LogRecord(
        time_unix_nano=T0,
        severity_number=SEVERITY_NUMBER_ERROR,
        severity_text="ERROR",
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        body=AnyValue(string_value="checkout failed"),
    )
    attrs = {
        "exception.type": "KeyError",
        "exception.message": "'sku'",
        "exception.stacktrace": PY_TRACE,
        "http.route": "/checkout",
        "enduser.id": "u-7",
        "cart.size": 3,
        **extra,
    }
    record.attributes.extend(kv(k, v) for k, v in attrs.items())
    return record


def request_record() -> LogRecord:
    record = LogRecord(
        time_unix_nano=T0, severity_number=SEVERITY_NUMBER_INFO, event_name="http.server.request"
    )
    attrs = {
        "http.request.method": "POST",
        "http.route": "/cart/{id}",
        "http.response.status_code": 201,
        "http.server.request.duration": 0.0425,
        "url.path": "/cart/77",
        "enduser.id": "u-7",
    }
    record.attributes.extend(kv(k, v) for k, v in attrs.items())
    return record


def metrics_request() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(RESOURCE)
    sm = rm.scope_metrics.add()
    cpu = Metric(name="system.cpu.utilization", unit="1")
    for cpu_name, idle in (("cpu0", 0.75), ("cpu1", 0.25)):
        for state, value in (
            ("idle", idle),
            ("user", (1 - idle) * 0.5),
            ("system", (1 - idle) * 0.5),
        ):
            point = NumberDataPoint(time_unix_nano=T0, as_double=value)
            point.attributes.extend([kv("cpu", cpu_name), kv("state", state)])
            cpu.gauge.data_points.append(point)
    memory = Metric(name="system.memory.utilization", unit="1")
    for state, value in (("used", 0.625), ("free", 0.375)):
        point = NumberDataPoint(time_unix_nano=T0, as_double=value)
        point.attributes.append(kv("state", state))
        memory.gauge.data_points.append(point)
    sessions = Metric(name="app.sessions.open")
    sessions.sum.data_points.append(NumberDataPoint(time_unix_nano=T0, as_int=318))
    latency = Metric(name="http.server.request.duration", unit="s")
    hp = latency.histogram.data_points.add(time_unix_nano=T0, count=10, sum=1.5, min=0.01, max=0.5)
    hp.attributes.append(kv("http.route", "/cart"))
    sm.metrics.extend([cpu, memory, sessions, latency])
    return request


def traces_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(RESOURCE)
    ss = rs.scope_spans.add()
    ss.scope.name = "io.opentelemetry.tomcat"
    server = Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        name="GET /cart/{id}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 42_500_000,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )
    server.attributes.extend(
        [
            kv("http.request.method", "GET"),
            kv("http.route", "/cart/{id}"),
            kv("http.response.status_code", 500),
        ]
    )
    event = server.events.add(time_unix_nano=T0 + 40_000_000, name="exception")
    event.attributes.extend(
        [
            kv("exception.type", "java.lang.IllegalStateException"),
            kv("exception.message", "cart locked"),
            kv(
                "exception.stacktrace",
                "java.lang.IllegalStateException: cart locked\n\tat com.shop.Cart.lock(Cart.java:42)\n\tat com.shop.Web.get(Web.java:10)",
            ),
            kv("exception.escaped", True),
        ]
    )
    internal = Span(
        trace_id=TRACE_ID,
        span_id=b"\x01" * 8,
        name="db.query",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 1,
    )
    ss.spans.extend([server, internal])
    return request


#: The exception log record of :func:`exception_record` in OTLP/JSON, as the spec encodes it.
LOGS_JSON: dict[str, Any] = {
    "resourceLogs": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "checkout"}},
                    {"key": "deployment.environment.name", "value": {"stringValue": "prod"}},
                    {"key": "host.name", "value": {"stringValue": "web-1"}},
                    {"key": "process.pid", "value": {"intValue": "4242"}},
                ]
            },
            "scopeLogs": [
                {
                    "scope": {"name": "shop"},
                    "logRecords": [
                        {
                            "timeUnixNano": str(T0),
                            "severityNumber": 21,
                            "severityText": "FATAL",
                            "traceId": TRACE_ID.hex(),
                            "spanId": SPAN_ID.hex(),
                            "body": {"stringValue": "crashed"},
                            "attributes": [
                                {"key": "exception.type", "value": {"stringValue": "TypeError"}},
                                {
                                    "key": "exception.message",
                                    "value": {"stringValue": "x is undefined"},
                                },
                                {
                                    "key": "exception.stacktrace",
                                    "value": {
                                        "stringValue": "TypeError: x is undefined\n    at Cart.total (/app/src/cart.js:10:5)\n    at /app/node_modules/express/lib/router.js:284:7"
                                    },
                                },
                                {
                                    "key": "tags",
                                    "value": {
                                        "arrayValue": {
                                            "values": [{"stringValue": "a"}, {"intValue": "2"}]
                                        }
                                    },
                                },
                                {"key": "ok", "value": {"boolValue": False}},
                            ],
                        },
                        {"timeUnixNano": str(T0), "body": {"stringValue": "just a log line"}},
                    ],
                }
            ],
        }
    ]
}
