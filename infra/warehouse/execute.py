"""One query request against the engine: route the statement, run it, describe the reply.

Results are buffered when the client asked to wait for the end of the query
(clickhouse-connect's ``query``), and streamed chunk by chunk otherwise (its
``*_stream`` calls, curl), so large exports never sit whole in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shiftright_server.infra.warehouse import errors
from shiftright_server.infra.warehouse.body import Body
from shiftright_server.infra.warehouse.engine import Engine, EngineConnection, Lease, Outcome
from shiftright_server.infra.warehouse.request import QueryRequest
from shiftright_server.infra.warehouse.sql import Kind, Statement, reaches_outside, scan

_HEAD_BYTES = 64 * 1024
_STREAMABLE = (
    "native",
    "rowbinary",
    "tabseparated",
    "tsv",
    "csv",
    "jsoneachrow",
    "jsonlines",
    "ndjson",
    "jsoncompacteachrow",
    "jsonstringseachrow",
    "jsoncompactstringseachrow",
    "values",
    "arrowstream",
)
DEFAULT_FORMAT = "TabSeparated"


@dataclass
class Reply:
    """A successful answer. ``body`` is the whole result, or its first chunk when
    ``rest`` streams the remainder."""

    timezone: str
    fmt: str | None = None
    outcome: Outcome = field(default_factory=Outcome)
    body: bytes = b""
    rest: Iterator[bytes] | None = None


@dataclass(frozen=True)
class Routed:
    statement: Statement
    sql: str
    data: Iterator[bytes]


def route(req: QueryRequest) -> Routed:
    """Find the statement in ``query`` + "\\n" + body, and the INSERT data if any.
    Only an INSERT ... FORMAT leaves its data unread, to be streamed into the engine."""
    prefix = (req.query + "\n").encode() if req.query else b""
    body = req.body
    text = (prefix + body.fill(_HEAD_BYTES)[:_HEAD_BYTES]).decode("latin-1")
    statement = scan(text)
    if not _resolved(statement, text, body):
        text = (prefix + body.read_all()).decode("latin-1")
        statement = scan(text)
    sql = _utf8(statement.sql)
    if statement.data_start is None:
        return Routed(statement, sql, iter(()))
    first = _tail(prefix, body.head, statement.data_start)
    return Routed(statement, sql, _prepend(first, body.rest()))


def _resolved(statement: Statement, text: str, body: Body) -> bool:
    """Whether the head alone settles the statement and where its data begins."""
    if body.exhausted and len(body.head) <= _HEAD_BYTES:
        return True
    start = statement.data_start
    return start is not None and (start < len(text) or text[start - 1] == "\n")


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _utf8(latin: str) -> str:
    try:
        return latin.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.bad_arguments("Query is not valid UTF-8") from exc


def _tail(prefix: bytes, head: bytes, start: int) -> bytes:
    if start >= len(prefix):
        return head[start - len(prefix) :]
    return prefix[start:] + head


def execute(engine: Engine, req: QueryRequest) -> Reply:
    """Run the request; raises :class:`errors.WarehouseError` before any byte is sent."""
    routed = route(req)
    if not routed.sql:
        raise errors.WarehouseError(62, "SYNTAX_ERROR", "Empty query")
    if req.readonly and not routed.statement.read_only:
        raise errors.read_only()
    if req.readonly and (outside := reaches_outside(routed.sql)):
        raise errors.WarehouseError(
            497,
            "ACCESS_DENIED",
            f"{outside} reaches beyond the warehouse's tables, which a read-only request may not",
        )
    if _streams(req, routed.statement):
        return _first_of_stream(_streamed(engine, req, routed))
    with engine.connection(req.session) as lease:
        return _buffered(lease, req, routed)


def output_format(req: QueryRequest, statement: Statement) -> str:
    return statement.format or req.default_format or DEFAULT_FORMAT


def _streams(req: QueryRequest, statement: Statement) -> bool:
    if req.wait_end_of_query or statement.kind is not Kind.ROWS:
        return False
    return output_format(req, statement).lower().startswith(_STREAMABLE)


def _buffered(lease: Lease, req: QueryRequest, routed: Routed) -> Reply:
    conn, statement = lease.conn, routed.statement
    _prepare(lease, req, statement)
    if statement.kind is Kind.INSERT and statement.format is not None:
        outcome = conn.insert(routed.sql, statement.format, routed.data)
        return Reply(conn.timezone(), outcome=outcome)
    fmt = output_format(req, statement)
    result = conn.run(routed.sql, fmt, req.params)
    conn.after_statement(statement.kind is Kind.SET, statement.kind is Kind.USE)
    rows = statement.kind is Kind.ROWS
    return Reply(conn.timezone(), fmt if rows else None, _outcome(result), result.bytes())


def _prepare(lease: Lease, req: QueryRequest, statement: Statement) -> None:
    if statement.changes_context and req.session is None:
        lease.reusable = False
    if statement.kind is Kind.SET:
        # A SET statement changes the session's own values, not the URL's overrides.
        lease.conn.peel_overrides()
        lease.conn.prepare({}, req.database)
        return
    lease.conn.prepare(req.settings, req.database)


def _outcome(result: Any) -> Outcome:
    return Outcome(
        read_rows=result.storage_rows_read(),
        read_bytes=result.storage_bytes_read(),
        written_rows=result.rows_written(),
        written_bytes=result.bytes_written(),
        result_rows=result.rows_read(),
        result_bytes=result.bytes_read(),
        elapsed_s=result.elapsed(),
    )


def _streamed(engine: Engine, req: QueryRequest, routed: Routed) -> Iterator[Reply | bytes]:
    """First yields a Reply (headers and first chunk), then the remaining chunks.
    The connection is held until the last chunk has been produced."""
    with engine.connection(req.session) as lease:
        _prepare(lease, req, routed.statement)
        fmt = output_format(req, routed.statement)
        timezone = lease.conn.timezone()  # no other statement may run while the stream is open
        chunks = lease.conn.stream(routed.sql, fmt, req.params)
        first = next(chunks, None)
        if first is None:
            yield _empty_result(lease.conn, routed, fmt, req)
            return
        yield Reply(timezone, fmt, body=first)
        yield from chunks


def _empty_result(conn: EngineConnection, routed: Routed, fmt: str, req: QueryRequest) -> Reply:
    # A stream of no rows carries no header; formats with names need one, so ask again whole.
    body = b""
    if "withnames" in fmt.lower():
        body = conn.run(routed.sql, fmt, req.params).bytes()
    return Reply(conn.timezone(), fmt, body=body)


def _first_of_stream(stream: Iterator[Reply | bytes]) -> Reply:
    head = next(stream)
    assert isinstance(head, Reply)  # _streamed always yields its Reply first
    head.rest = _chunks_only(stream)
    return head


def _chunks_only(stream: Iterator[Reply | bytes]) -> Iterator[bytes]:
    try:
        for chunk in stream:
            assert isinstance(chunk, bytes)  # only the first item is a Reply
            yield chunk
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
