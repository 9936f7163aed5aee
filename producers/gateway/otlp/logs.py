"""OTLP log records → error events (``exception.*``) and usage events (requests, OTel events)."""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from shiftright_server.producers.gateway.intake import Item
from shiftright_server.producers.gateway.otlp.common import (
    Draft,
    Translation,
    attributes,
    hex_id,
    text_of,
    value_of,
)
from shiftright_server.producers.gateway.stacktrace import parse_frames

HTTP_SERVER_REQUEST = "http.server.request"
NOT_MAPPED = "log record is neither an exception, an HTTP server request nor an OTel event"

_MAX_MESSAGE = 8192
_MAX_STACKTRACE = 65536
_MAX_FRAMES = 256
_LEVEL_OF_TEXT = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "fatal": "fatal",
    "critical": "fatal",
}
_TYPE_IN_TEXT = re.compile(r"^(?:Caused by: )?([A-Za-z_][\w.$]*(?:Error|Exception|Panic|Fault)\w*)")


def translate_logs(request: ExportLogsServiceRequest) -> Translation:
    out = Translation()
    for i, resource_logs in enumerate(request.resource_logs):
        resource = attributes(resource_logs.resource.attributes)
        for j, scope_logs in enumerate(resource_logs.scope_logs):
            scope = scope_logs.scope
            for k, record in enumerate(scope_logs.log_records):
                path = f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                event = translate_record(record, resource, scope.name, scope.version)
                if event is None:
                    out.skipped[NOT_MAPPED] += 1
                else:
                    out.items.append(Item(path, event))
    return out


def translate_record(
    record: LogRecord, resource: dict[str, Any], scope_name: str = "", scope_version: str = ""
) -> dict[str, Any] | None:
    attrs = attributes(record.attributes)
    if any(name.startswith("exception.") for name in attrs):
        draft = _error(record, resource, attrs)
    elif _is_http_request(record, attrs):
        draft = _usage(record, resource, attrs, _request_name(attrs))
    elif record.event_name:
        draft = _usage(record, resource, attrs, record.event_name)
    else:
        return None
    draft.set_time(record.time_unix_nano or record.observed_time_unix_nano)
    draft.note("trace_id", hex_id(record.trace_id))
    draft.note("span_id", hex_id(record.span_id))
    draft.note("otel.scope.name", scope_name)
    draft.note("otel.scope.version", scope_version)
    draft.note("log.severity_text", record.severity_text)
    return draft.build()


def _error(record: LogRecord, resource: dict[str, Any], attrs: dict[str, Any]) -> Draft:
    escaped = attrs.pop("exception.escaped", False)
    draft = Draft("error", resource)
    draft.absorb(attrs)
    body = _body_text(record)
    fields = draft.fields
    if "exception_message" not in fields and body is not None:
        fields["exception_message"] = body
    elif body:
        draft.note("log.body", body)
    stack = str(fields.get("stacktrace", ""))
    fields.setdefault(
        "exception_type", _type_from_text(stack, str(fields.get("exception_message", "")))
    )
    fields["exception_message"] = str(fields.get("exception_message", ""))[:_MAX_MESSAGE]
    fields["stacktrace"] = stack[:_MAX_STACKTRACE]
    fields["frames"] = parse_frames(stack)[-_MAX_FRAMES:]
    fields["handled"] = not (escaped is True or escaped == "true")
    fields["level"] = _level(record.severity_number, record.severity_text)
    return draft


def _usage(record: LogRecord, resource: dict[str, Any], attrs: dict[str, Any], name: str) -> Draft:
    draft = Draft("usage", resource)
    draft.absorb(attrs)
    draft.fields["name"] = name
    if (body := _body_text(record)) is not None:
        draft.note("log.body", body)
    return draft


def _is_http_request(record: LogRecord, attrs: dict[str, Any]) -> bool:
    if record.event_name == HTTP_SERVER_REQUEST:
        return True
    return "http.request.method" in attrs and (
        "http.route" in attrs or "http.response.status_code" in attrs
    )


def _request_name(attrs: dict[str, Any]) -> str:
    """``GET /cart/{id}``: method and route template, as a span of the request is named."""
    method = text_of(attrs.get("http.request.method", ""))
    route = text_of(attrs.get("http.route", ""))
    return f"{method} {route}".strip() or HTTP_SERVER_REQUEST


def _body_text(record: LogRecord) -> str | None:
    return text_of(value_of(record.body)) if record.HasField("body") else None


def _type_from_text(stacktrace: str, message: str) -> str:
    """A missing ``exception.type``: from the trace's last line (Python) or first line (Java,
    JavaScript, .NET), or the message; else a generic name."""
    lines = [line.strip() for line in stacktrace.splitlines() if line.strip()]
    for line in [*lines[-1:], *lines[:1], message]:
        if m := _TYPE_IN_TEXT.match(line):
            return m.group(1)
    return "Error"


def _level(severity: int, text: str) -> str:
    """OTel severity numbers: 1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error, 21+ fatal."""
    if severity == 0:
        return _LEVEL_OF_TEXT.get(text.strip().lower(), "error")
    if severity <= 8:
        return "debug"
    if severity <= 12:
        return "info"
    if severity <= 16:
        return "warning"
    if severity <= 20:
        return "error"
    return "fatal"
