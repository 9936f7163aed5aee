"""OTLP/HTTP request bodies (protobuf or JSON) → protobuf messages, and the answers back.

OTLP/JSON is protobuf's JSON mapping with two differences: trace and span ids are hex
(not base64), and enums are integers. Ids are turned into base64 before the standard
parser sees them; unknown fields are ignored, as the specification asks of receivers.
"""

from __future__ import annotations

import base64
import re
from typing import Any, TypeVar

import pydantic_core
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from shiftright_server.producers.gateway.errors import Rejected

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

M = TypeVar("M", bound=Message)

_ID_FIELDS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def require_media_type(content_type: str | None) -> str:
    """The request's OTLP encoding, or 415."""
    kind = media_type(content_type)
    if kind not in (PROTOBUF, JSON):
        raise Rejected(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type!r} is not supported; use {PROTOBUF} or {JSON}",
        )
    return kind


def parse(body: bytes, content_type: str | None, message: type[M]) -> M:
    kind = require_media_type(content_type)
    return _from_protobuf(body, message) if kind == PROTOBUF else _from_json(body, message)


def _from_protobuf(body: bytes, message: type[M]) -> M:
    out: M = message()
    try:
        out.ParseFromString(body)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise Rejected(
            400, "malformed_protobuf", f"the body is not a valid {message.__name__}: {exc}"
        ) from None
    return out


def _from_json(body: bytes, message: type[M]) -> M:
    try:
        value = pydantic_core.from_json(body)
    except ValueError as exc:
        raise Rejected(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Rejected(
            400, "malformed_json", f"the body must be a JSON object ({message.__name__})"
        )
    try:
        parsed: M = json_format.ParseDict(
            _ids_to_base64(value), message(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise Rejected(
            400, "malformed_otlp_json", f"not a valid OTLP/JSON {message.__name__}: {exc}"
        ) from None
    return parsed


def _ids_to_base64(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _id_value(v) if k in _ID_FIELDS else _ids_to_base64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ids_to_base64(v) for v in value]
    return value


def _id_value(value: Any) -> Any:
    if isinstance(value, str) and _HEX.match(value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    return value  # not hex: let the parser judge it as base64


def encode(message: Message, content_type: str) -> bytes:
    if content_type == PROTOBUF:
        data: bytes = message.SerializeToString()
        return data
    as_dict: dict[str, Any] = json_format.MessageToDict(message)
    return pydantic_core.to_json(as_dict)


def status(code: int, text: str, content_type: str) -> bytes:
    """An error answer: ``google.rpc.Status`` (code, message), as OTLP/HTTP asks."""
    if content_type == PROTOBUF:
        return _varint_field(1, code) + _bytes_field(2, text.encode())
    return pydantic_core.to_json({"code": code, "message": text})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _bytes_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value
