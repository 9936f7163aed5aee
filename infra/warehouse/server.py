"""The warehouse process: a threading HTTP server in front of one chDB engine.

Why ``http.server.ThreadingHTTPServer`` rather than aiohttp: every chDB call
blocks (and releases the GIL while the engine works), so a thread per client
connection is the natural shape; an event loop would push each call to an
executor anyway. clickhouse-connect keeps its connections alive, so threads are
few and long-lived, and the standard library lets us control the exact bytes:
no automatic body decoding, chunked streaming, ClickHouse's headers.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType

import structlog
from shiftright_server.infra.warehouse.accounts import Accounts
from shiftright_server.infra.warehouse.engine import Engine
from shiftright_server.infra.warehouse.handler import ClickHouseHandler, Context

_log = structlog.get_logger(__name__)
_DRAIN_S = 10.0  # how long a stop waits for requests in progress


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class ExposedWithoutAccounts(RuntimeError):
    """Asked to listen beyond loopback with no accounts to check requests against."""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class WarehouseServer:
    """Owns the engine and the listening socket; ``serve_forever`` or ``start`` it."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 18123,
        accounts: Path | None = None,
    ) -> None:
        self.accounts = Accounts(accounts or data_dir.parent / "accounts.json")
        if not self.accounts.enabled and not _loopback(host):
            raise ExposedWithoutAccounts(
                f"the warehouse would answer anyone on {host}:{port} with any statement: add "
                "accounts first (shiftright users warehouse add NAME --role reader|writer), or "
                "listen on loopback (127.0.0.1)"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(data_dir)
        self._context = Context(self.engine, socket.gethostname(), self.accounts)
        handler = type("Handler", (ClickHouseHandler,), {"context": self._context})
        try:
            self._httpd = _HTTPServer((host, port), handler)
        except OSError:
            self.engine.close()
            raise
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> threading.Thread:
        """Serve from a background thread (tests, embedding)."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="warehouse-http", daemon=True
        )
        self._thread.start()
        return self._thread

    def close(self) -> None:
        """Stop accepting, then close chDB so its parts are flushed and the lock released."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self._context.wait_idle(_DRAIN_S):
            _log.warning("requests_abandoned", waited_s=_DRAIN_S)
        self.engine.close()
        _log.info("warehouse_stopped", url=self.url)


def serve(
    data_dir: Path, host: str = "127.0.0.1", port: int = 18123, accounts: Path | None = None
) -> None:
    """Serve the ClickHouse HTTP interface over chDB until SIGTERM or SIGINT."""
    server = WarehouseServer(data_dir, host, port, accounts)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        _log.info("signal_received", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server.start()
    _log.info(
        "warehouse_started", url=server.url, data_dir=str(data_dir), version=server.engine.version
    )
    while not stop.wait(timeout=1.0):
        pass
    server.close()
