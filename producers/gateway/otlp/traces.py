"""OTLP spans → usage events (server spans) and error events (their ``exception`` events)."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from shiftright_server.producers.gateway.intake import Item
from shiftright_server.producers.gateway.otlp.common import Draft, Translation, attributes, hex_id
from shiftright_server.producers.gateway.stacktrace import parse_frames

NOT_MAPPED = "span is not a server span and records no exception"
_STATUS = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}


def translate_traces(request: ExportTraceServiceRequest) -> Translation:
    out = Translation()
    for i, resource_spans in enumerate(request.resource_spans):
        resource = attributes(resource_spans.resource.attributes)
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            for k, span in enumerate(scope_spans.spans):
                path = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                events = translate_span(span, resource, scope_spans.scope.name)
                if not events:
                    out.skipped[NOT_MAPPED] += 1
                out.items.extend(Item(path, e) for e in events)
    return out


def translate_span(
    span: Span, resource: dict[str, Any], scope_name: str = ""
) -> list[dict[str, Any]]:
    attrs = attributes(span.attributes)
    out = []
    if span.kind == Span.SPAN_KIND_SERVER:
        out.append(_usage(span, resource, attrs, scope_name))
    for event in span.events:
        if event.name == "exception":
            out.append(_error(span, event, resource, attrs, scope_name))
    return out


def _usage(
    span: Span, resource: dict[str, Any], attrs: dict[str, Any], scope: str
) -> dict[str, Any]:
    draft = Draft("usage", resource)
    draft.absorb(attrs)
    draft.fields["name"] = span.name or "http.server.request"
    draft.set_time(span.start_time_unix_nano)
    if span.end_time_unix_nano >= span.start_time_unix_nano > 0:
        draft.fields["duration_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    _ids(draft, span, scope)
    draft.note("otel.status_code", _STATUS.get(span.status.code, ""))
    draft.note("otel.status_description", span.status.message)
    return draft.build()


def _error(
    span: Span, event: Span.Event, resource: dict[str, Any], attrs: dict[str, Any], scope: str
) -> dict[str, Any]:
    exc = attributes(event.attributes)
    escaped = exc.pop("exception.escaped", False)
    draft = Draft("error", resource)
    draft.absorb(attrs)  # the span's own attributes (route, user, …) describe the error too
    draft.absorb(exc)
    fields = draft.fields
    fields.setdefault("exception_type", "Error")
    stack = str(fields.get("stacktrace", ""))
    fields["frames"] = parse_frames(stack)[-256:]
    fields["handled"] = not (escaped is True or escaped == "true")
    draft.set_time(event.time_unix_nano or span.start_time_unix_nano)
    _ids(draft, span, scope)
    draft.note("otel.span.name", span.name)
    return draft.build()


def _ids(draft: Draft, span: Span, scope: str) -> None:
    draft.note("trace_id", hex_id(span.trace_id))
    draft.note("span_id", hex_id(span.span_id))
    draft.note("parent_span_id", hex_id(span.parent_span_id))
    draft.note("otel.scope.name", scope)
