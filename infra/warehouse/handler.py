"""The HTTP exchange: read a request, answer as a ClickHouse server would."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from shiftright_server.infra.warehouse import codecs, errors, request
from shiftright_server.infra.warehouse.execute import Reply, execute

if TYPE_CHECKING:
    from shiftright_server.infra.warehouse.accounts import Accounts
    from shiftright_server.infra.warehouse.engine import Engine

_log = structlog.get_logger(__name__)
_OK_PATHS = ("/ping", "/replicas_status")
_READ_PIECE = 1 << 20
_DRAIN_LIMIT = 16 << 20


class Context:
    """What every handler thread shares: the engine and the server's identity."""

    def __init__(self, engine: Engine, display_name: str, accounts: Accounts) -> None:
        self.engine = engine
        self.display_name = display_name
        self.accounts = accounts
        self._in_flight = 0
        self._idle = threading.Condition()

    @contextmanager
    def serving(self) -> Iterator[None]:
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait for requests in progress to finish; False if some still run."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)


class ClickHouseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ClickHouse"
    timeout = 600  # an idle keep-alive connection's thread is reaped after this many seconds
    context: Context  # set on a subclass by the server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; Nagle would hold the body back.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_HEAD(self) -> None:  # noqa: N802
        self._send_plain(200, b"")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib signature)
        _log.debug("http_request_logged", line=format % args)

    def _dispatch(self, method: str) -> None:
        with self.context.serving():
            self._answer(method)

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        incoming = _Incoming(self.rfile, self.headers)
        if parts.path in _OK_PATHS or (parts.path == "/" and not parts.query and incoming.empty):
            self._send_plain(200, b"Ok.\n")
        elif parts.path != "/":
            self._send_plain(404, f"There is no handle {parts.path}\n".encode())
        else:
            self._query(method, parts.query, incoming)
        if not incoming.drain(_DRAIN_LIMIT):
            self.close_connection = True

    def _query(self, method: str, url_query: str, incoming: _Incoming) -> None:
        query_id = ""
        try:
            req = request.parse(method, url_query, dict(self.headers.items()), incoming.chunks())
            query_id = req.query_id
            account = self.context.accounts.authenticate(req.user, req.key)
            if account is not None and account.read_only:
                req = replace(req, readonly=True)
            reply = execute(self.context.engine, req)
        except errors.WarehouseError as exc:
            _log.info("query_failed", code=exc.code, error=exc.name, query_id=query_id)
            self._send_error(exc, query_id)
            return
        encoding = self._response_encoding(req)
        self._send_reply(reply, req, encoding)

    def _response_encoding(self, req: request.QueryRequest) -> str | None:
        if not req.http_compression:
            return None
        return codecs.choose_encoding(self.headers.get("Accept-Encoding"))

    def _common_headers(self, query_id: str) -> None:
        self.send_header("X-ClickHouse-Server-Display-Name", self.context.display_name)
        self.send_header("X-ClickHouse-Query-Id", query_id)

    def _send_reply(self, reply: Reply, req: request.QueryRequest, encoding: str | None) -> None:
        self.send_response(200)
        self._common_headers(req.query_id)
        self.send_header("Content-Type", _content_type(reply.fmt))
        if reply.fmt is not None:
            self.send_header("X-ClickHouse-Format", reply.fmt)
        self.send_header("X-ClickHouse-Timezone", reply.timezone)
        self.send_header("X-ClickHouse-Summary", _summary(reply))
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        if reply.rest is None:
            self._send_whole(reply.body, encoding)
        else:
            self._send_stream(reply.body, reply.rest, encoding)

    def _send_whole(self, body: bytes, encoding: str | None) -> None:
        if encoding is not None:
            compressor = codecs.compressor_for(encoding)
            body = compressor.compress(body) + compressor.flush()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_stream(self, first: bytes, rest: Iterator[bytes], encoding: str | None) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        compressor = codecs.compressor_for(encoding) if encoding else None
        try:
            for chunk in _prepend(first, rest):
                self._write_chunk(compressor.compress(chunk) if compressor else chunk)
        except errors.WarehouseError as exc:
            # Headers are gone: like ClickHouse, append the exception text, then end without
            # the last chunk so that no client can take the cut body for a whole one.
            _log.warning("stream_failed", code=exc.code, error=exc.name)
            self.close_connection = True
            if compressor is None:
                self._write_chunk(b"\n" + exc.body(self.context.engine.version))
            return
        except OSError:
            self.close_connection = True
            return
        finally:
            _close(rest)
        self._write_chunk(compressor.flush() if compressor else b"")
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))

    def _send_error(self, exc: errors.WarehouseError, query_id: str) -> None:
        body = exc.body(self.context.engine.version)
        self.send_response(exc.http_status)
        self._common_headers(query_id)
        self.send_header("X-ClickHouse-Exception-Code", str(exc.code))
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Incoming:
    """The raw request body, read on demand: by Content-Length or chunked."""

    def __init__(self, rfile: Any, headers: Any) -> None:
        self._rfile = rfile
        self._chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self._left = 0 if self._chunked else int(headers.get("Content-Length") or 0)
        self._done = not self._chunked and self._left <= 0

    @property
    def empty(self) -> bool:
        return self._done

    def chunks(self) -> Iterator[bytes]:
        try:
            while not self._done:
                chunk = self._next_chunk() if self._chunked else self._next_piece()
                if chunk:
                    yield chunk
        except (ValueError, OSError) as exc:
            self._done = True
            raise errors.bad_arguments(f"Cannot read request body: {exc}") from exc

    def drain(self, limit: int) -> bool:
        """Consume what the handler left unread; False when too much is left to bother."""
        read = 0
        for chunk in self.chunks():
            read += len(chunk)
            if read > limit:
                return False
        return True

    def _next_piece(self) -> bytes:
        piece: bytes = self._rfile.read(min(self._left, _READ_PIECE))
        if not piece:
            raise ValueError("connection closed inside the body")
        self._left -= len(piece)
        self._done = self._left <= 0
        return piece

    def _next_chunk(self) -> bytes:
        size = int(self._rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self._done = True
            return b""
        data = self._rfile.read(size)
        self._rfile.readline(8)
        return bytes(data)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _close(rest: Iterator[bytes]) -> None:
    close = getattr(rest, "close", None)
    if close is not None:
        close()


def _summary(reply: Reply) -> str:
    o = reply.outcome
    values = {
        "read_rows": o.read_rows,
        "read_bytes": o.read_bytes,
        "written_rows": o.written_rows,
        "written_bytes": o.written_bytes,
        "total_rows_to_read": o.read_rows,
        "result_rows": o.result_rows or o.written_rows,
        "result_bytes": o.result_bytes or o.written_bytes,
        "elapsed_ns": int(o.elapsed_s * 1e9),
    }
    return json.dumps({k: str(v) for k, v in values.items()}, separators=(",", ":"))


def _content_type(fmt: str | None) -> str:
    name = (fmt or "").lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    if name.startswith(("native", "rowbinary", "parquet", "arrow", "orc", "avro")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"
