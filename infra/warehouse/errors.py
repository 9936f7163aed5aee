"""ClickHouse-shaped failures.

::

    WarehouseError            a query failed; carries the ClickHouse code and name
    └── (raised from chDB errors via :func:`from_engine`, or built by the server
         for protocol problems: read-only GET, sessions, compression)

The HTTP status follows ClickHouse's own mapping, except that nothing maps to
429/503/504: clickhouse-connect retries those, and a query error is not transient.
"""

from __future__ import annotations

import re

_ENGINE_ERROR = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?(.*)", re.DOTALL)
_NAME_SUFFIX = re.compile(r"\s*\(([A-Z_]+)\)\s*(?:\(version [^)]*\))?\s*$")

_BAD_REQUEST = frozenset(
    {
        "BAD_ARGUMENTS",
        "CANNOT_COMPILE_REGEXP",
        "CANNOT_PARSE_TEXT",
        "CANNOT_PARSE_ESCAPE_SEQUENCE",
        "CANNOT_PARSE_QUOTED_STRING",
        "CANNOT_PARSE_DATE",
        "CANNOT_PARSE_DATETIME",
        "CANNOT_PARSE_NUMBER",
        "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
        "CANNOT_PARSE_IPV4",
        "CANNOT_PARSE_IPV6",
        "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
        "CANNOT_PARSE_UUID",
        "DUPLICATE_COLUMN",
        "ILLEGAL_COLUMN",
        "UNKNOWN_ELEMENT_IN_AST",
        "UNKNOWN_TYPE_OF_AST_NODE",
        "THERE_IS_NO_COLUMN",
        "TOO_DEEP_AST",
        "TOO_BIG_AST",
        "UNEXPECTED_AST_STRUCTURE",
        "SYNTAX_ERROR",
        "INCORRECT_DATA",
        "TYPE_MISMATCH",
        "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    }
)
_NOT_FOUND = frozenset(
    {
        "UNKNOWN_TABLE",
        "UNKNOWN_FUNCTION",
        "UNKNOWN_IDENTIFIER",
        "UNKNOWN_TYPE",
        "UNKNOWN_STORAGE",
        "UNKNOWN_DATABASE",
        "UNKNOWN_SETTING",
        "UNKNOWN_DIRECTION_OF_SORTING",
        "UNKNOWN_AGGREGATE_FUNCTION",
        "UNKNOWN_FORMAT",
        "UNKNOWN_DATABASE_ENGINE",
        "UNKNOWN_TYPE_OF_QUERY",
        "UNKNOWN_ROLE",
    }
)
_OTHER_STATUS = {
    "REQUIRED_PASSWORD": 401,
    "AUTHENTICATION_FAILED": 401,
    "ACCESS_DENIED": 403,
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "HTTP_LENGTH_REQUIRED": 411,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

UNKNOWN_EXCEPTION = 1002


class WarehouseError(Exception):
    """A failed query, as ClickHouse would report it."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    @property
    def http_status(self) -> int:
        return status_for(self.name)

    def body(self, version: str) -> bytes:
        text = (
            f"Code: {self.code}. DB::Exception: {self.message}. ({self.name}) (version {version})\n"
        )
        return text.encode("utf-8", errors="replace")


def status_for(name: str) -> int:
    """ClickHouse's status for an error name; never a status the client retries."""
    if name in _BAD_REQUEST:
        return 400
    if name in _NOT_FOUND:
        return 404
    return _OTHER_STATUS.get(name, 500)


def from_engine(exc: BaseException) -> WarehouseError:
    """Turn a chDB exception (whose text embeds ``Code: N. DB::Exception: ...``) into ours."""
    text = str(exc)
    match = _ENGINE_ERROR.search(text)
    if match is None:
        return WarehouseError(UNKNOWN_EXCEPTION, "UNKNOWN_EXCEPTION", text.strip() or repr(exc))
    message, name = _split_name(match.group(2))
    return WarehouseError(int(match.group(1)), name, message)


def _split_name(text: str) -> tuple[str, str]:
    suffix = _NAME_SUFFIX.search(text)
    if suffix is None:
        return text.strip().rstrip("."), "UNKNOWN_EXCEPTION"
    return text[: suffix.start()].strip().rstrip("."), suffix.group(1)


def read_only() -> WarehouseError:
    return WarehouseError(
        164,
        "READONLY",
        "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
        "readonly. You should use method POST for modifying queries",
    )


def session_not_found(session_id: str) -> WarehouseError:
    return WarehouseError(372, "SESSION_NOT_FOUND", f"Session {session_id} not found")


def session_locked() -> WarehouseError:
    return WarehouseError(373, "SESSION_IS_LOCKED", "Session is locked by a concurrent client")


def bad_arguments(message: str) -> WarehouseError:
    return WarehouseError(36, "BAD_ARGUMENTS", message)


def unknown_compression(method: str) -> WarehouseError:
    return WarehouseError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method {method}")


def cannot_decompress(detail: str) -> WarehouseError:
    return WarehouseError(271, "CANNOT_DECOMPRESS", f"Cannot decompress request body: {detail}")


def unknown_setting(name: str) -> WarehouseError:
    return WarehouseError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
