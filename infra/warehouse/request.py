"""HTTP parameters → one query request, the way ClickHouse's HTTP handler reads them.

URL parameters (and multipart form fields) are either transport parameters,
query parameters (``param_*``), HTTP-layer settings we honour ourselves, or
ClickHouse settings that go to the engine.
"""

from __future__ import annotations

import email.parser
import email.policy
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl

from shiftright_server.infra.warehouse import codecs, errors
from shiftright_server.infra.warehouse.accounts import credentials
from shiftright_server.infra.warehouse.body import Body
from shiftright_server.infra.warehouse.engine import SessionRef

_TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "query_id",
        "quota_key",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "user",
        "password",
        "client_protocol_version",
        "role",
        "stacktrace",
    }
)
# Settings that only shape the HTTP exchange; the engine never needs to see them.
_HTTP_SETTINGS = frozenset(
    {
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        "http_zlib_compression_level",
        "http_wait_end_of_query",
        "http_response_buffer_size",
        "http_native_compression_disable_checksumming_on_decompress",
        "readonly",
    }
)
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class QueryRequest:
    """Everything a query needs from one HTTP request; ``body`` yields decompressed bytes."""

    method: str
    query: str
    body: Body
    database: str | None = None
    default_format: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    session: SessionRef | None = None
    query_id: str = ""
    wait_end_of_query: bool = False
    http_compression: bool = True
    readonly: bool = False
    user: str | None = None
    key: str | None = field(default=None, repr=False)


def parse(
    method: str, url_query: str, headers: Mapping[str, str], raw: Iterable[bytes]
) -> QueryRequest:
    """Build a :class:`QueryRequest`; raises :class:`errors.WarehouseError` on bad input.
    The body is not read here, except for forms and ClickHouse-compressed bodies."""
    pairs = parse_qsl(url_query, keep_blank_values=True)
    decoded = codecs.decode_stream(raw, headers.get("Content-Encoding"))
    content_type = headers.get("Content-Type", "")
    if method == "POST" and content_type.lower().startswith("multipart/form-data"):
        pairs += _form_fields(content_type, b"".join(decoded))
        decoded = iter(())
    values = dict(pairs)
    if values.get("decompress", "0") in _TRUE:
        decoded = iter([codecs.decode_native_blocks(b"".join(decoded))])
    user, key = credentials(headers, values)
    return replace(_build(method, values, Body(decoded)), user=user, key=key)


def _build(method: str, values: Mapping[str, str], body: Body) -> QueryRequest:
    return QueryRequest(
        method=method,
        query=values.get("query", ""),
        body=body,
        database=values.get("database") or None,
        default_format=values.get("default_format") or None,
        settings=_engine_settings(values.items()),
        params={k[6:]: v for k, v in values.items() if k.startswith("param_")},
        session=_session(values),
        query_id=values.get("query_id") or str(uuid.uuid4()),
        wait_end_of_query=values.get("wait_end_of_query", "0") in _TRUE,
        http_compression=values.get("enable_http_compression", "1") in _TRUE,
        readonly=method in ("GET", "HEAD") or values.get("readonly", "0") not in ("", "0"),
    )


def _engine_settings(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {
        k: v
        for k, v in items
        if k not in _TRANSPORT and k not in _HTTP_SETTINGS and not k.startswith("param_")
    }


def _session(values: Mapping[str, str]) -> SessionRef | None:
    session_id = values.get("session_id")
    if not session_id:
        return None
    try:
        timeout = float(values.get("session_timeout") or 60)
    except ValueError as exc:
        raise errors.WarehouseError(
            374, "INVALID_SESSION_TIMEOUT", f"Invalid session timeout: {values['session_timeout']}"
        ) from exc
    return SessionRef(
        session_id=session_id,
        timeout_s=timeout,
        check=values.get("session_check", "0") in _TRUE,
        close=values.get("close_session", "0") in _TRUE,
    )


def _form_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """Plain fields of a multipart form (query and ``param_*``); files are not supported."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise errors.WarehouseError(48, "NOT_IMPLEMENTED", "External data is not supported")
        payload = part.get_payload(decode=True) or b""
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.append((name, payload.decode("utf-8")))
    return fields
