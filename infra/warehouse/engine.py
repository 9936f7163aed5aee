"""chDB connections as the server uses them.

chDB has no per-query settings, so URL settings are layered onto a connection
with ``SET`` and peeled off again lazily: a connection remembers which settings it
overrides and their values beforehand, and only the difference to the next
request is applied. clickhouse-connect sends the same settings on every request,
so in steady state a request costs no extra statement at all.

One connection serves one request at a time (its lock); sessionless requests
borrow from a small pool, each ``session_id`` owns a connection of its own.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chdb
import structlog
from shiftright_server.infra.warehouse import errors, tuning

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_log = structlog.get_logger(__name__)


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass(frozen=True)
class Outcome:
    """What a finished statement did, for ``X-ClickHouse-Summary``."""

    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    elapsed_s: float = 0.0


class EngineConnection:
    """One chDB connection plus the settings and database we layered on it."""

    def __init__(self, conn: Any) -> None:
        self.lock = threading.Lock()
        self._conn = conn
        self._overrides: dict[str, str] = {}
        self._baseline: dict[str, str | None] = {}  # None: the setting was at its default
        self._database: str | None = None
        self._timezone: str | None = None
        self.home_database = "default"
        self.last_used = time.monotonic()

    def prepare(self, settings: Mapping[str, str], database: str | None) -> None:
        """Make the connection look as the request asks: its settings, its database."""
        self._apply_settings(settings)
        self._use(database or self.home_database)
        self.last_used = time.monotonic()

    def run(
        self, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None
    ) -> Any:
        try:
            return self._conn.query(sql, fmt, params=dict(params or {}))
        except Exception as exc:  # chDB raises ChdbError or RuntimeError
            raise errors.from_engine(exc) from exc

    def stream(self, sql: str, fmt: str, params: Mapping[str, str]) -> Iterator[bytes]:
        """Yield the result in chunks as chDB produces them."""
        try:
            result = self._conn.send_query(sql, fmt, params=dict(params))
        except Exception as exc:
            raise errors.from_engine(exc) from exc
        with result:
            yield from _chunks(result)

    def insert(self, sql: str, fmt: str, data: Iterable[bytes]) -> Outcome:
        """Run ``sql`` (an INSERT without FORMAT) with ``data`` encoded in ``fmt``,
        handing each chunk to the engine as it comes."""
        try:
            inserter = self._conn.send_insert(sql, fmt)
            with inserter:
                for chunk in data:
                    inserter.append(chunk)
                done = inserter.finish()
        except errors.WarehouseError:
            raise
        except Exception as exc:
            raise errors.from_engine(exc) from exc
        return Outcome(
            written_rows=done.rows_written, written_bytes=done.bytes_written, elapsed_s=done.elapsed
        )

    def timezone(self) -> str:
        if self._timezone is None:
            self._timezone = self.run("SELECT timezone()").bytes().decode().strip()
        return self._timezone

    def after_statement(self, changed_settings: bool, changed_database: bool) -> None:
        """Forget cached state a SET or USE statement may have changed."""
        if changed_settings:
            self._timezone = None
            self._forget_baseline()
        if changed_database:
            self.home_database = self.run("SELECT currentDatabase()").bytes().decode().strip()
            self._database = self.home_database

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception as exc:  # closing must never take the server down
            _log.warning("connection_close_failed", error=str(exc))

    def _use(self, database: str) -> None:
        if database != self._database:
            self.run(f"USE {quote_identifier(database)}")
            self._database = database

    def _apply_settings(self, settings: Mapping[str, str]) -> None:
        stale = [name for name in self._overrides if name not in settings]
        changed = {k: v for k, v in settings.items() if self._overrides.get(k) != v}
        if not stale and not changed:
            return
        for name in changed:
            if not _SETTING_NAME.match(name):
                raise errors.unknown_setting(name)
        self._snapshot([name for name in changed if name not in self._baseline])
        assignments = [self._restoring(name) for name in stale]
        assignments += [f"{name} = {quote_string(value)}" for name, value in changed.items()]
        self._set(assignments, stale, changed)

    def _set(self, assignments: list[str], stale: list[str], changed: dict[str, str]) -> None:
        try:
            self.run("SET " + ", ".join(assignments))
        except errors.WarehouseError:
            self._restore_all()
            raise
        for name in stale:
            del self._overrides[name]
            del self._baseline[name]
        self._overrides.update(changed)
        if "session_timezone" in changed or "session_timezone" in stale:
            self._timezone = None

    def _snapshot(self, names: list[str]) -> None:
        if not names:
            return
        listed = ", ".join(quote_string(name) for name in names)
        sql = f"SELECT name, value, changed FROM system.settings WHERE name IN ({listed})"
        found = {row["name"]: row for row in _json_rows(self.run(sql, "JSONEachRow").bytes())}
        for name in names:
            row = found.get(name)
            self._baseline[name] = row["value"] if row and int(row["changed"]) else None

    def _restoring(self, name: str) -> str:
        value = self._baseline.get(name)
        return f"{name} = DEFAULT" if value is None else f"{name} = {quote_string(value)}"

    def _restore_all(self) -> None:
        for name in list(self._baseline):
            try:
                self.run("SET " + self._restoring(name))
            except errors.WarehouseError as exc:
                _log.warning("setting_restore_failed", setting=name, error=exc.message)
        self._overrides.clear()
        self._baseline.clear()
        self._timezone = None

    def _forget_baseline(self) -> None:
        # A SET statement ran with the URL settings peeled off (see Engine), so
        # whatever it set is the new baseline; nothing is overridden any more.
        self._overrides.clear()
        self._baseline.clear()

    def peel_overrides(self) -> None:
        """Restore every URL setting, so a SET statement changes the session's own values."""
        if self._overrides:
            self._restore_all()


def _chunks(result: Any) -> Iterator[bytes]:
    while True:
        try:
            chunk = result.fetch()
        except Exception as exc:
            raise errors.from_engine(exc) from exc
        if chunk is None:
            return
        data = chunk.bytes()
        if data:
            yield data


def _json_rows(payload: bytes) -> Iterator[dict[str, Any]]:
    for line in payload.splitlines():
        if line.strip():
            yield json.loads(line)


class ConnectionPool:
    """Idle connections for sessionless requests."""

    def __init__(self, engine: Engine, max_idle: int) -> None:
        self._engine = engine
        self._idle: list[EngineConnection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle

    def acquire(self) -> EngineConnection:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        conn = conn or self._engine.open()
        conn.lock.acquire()
        return conn

    def release(self, conn: EngineConnection, reusable: bool) -> None:
        conn.lock.release()
        with self._lock:
            if reusable and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


@dataclass
class _Session:
    conn: EngineConnection
    timeout_s: float


class SessionRegistry:
    """``session_id`` → its own connection, expired after ``session_timeout`` idle seconds."""

    def __init__(self, engine: Engine, lock_wait_s: float) -> None:
        self._engine = engine
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._lock_wait_s = lock_wait_s

    def acquire(self, session_id: str, timeout_s: float, check: bool) -> EngineConnection:
        self.expire()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None and check:
                raise errors.session_not_found(session_id)
            if session is None:
                session = _Session(self._engine.open(), timeout_s)
                self._sessions[session_id] = session
                _log.debug("session_opened", session_id=session_id)
            session.timeout_s = timeout_s
        if not session.conn.lock.acquire(timeout=self._lock_wait_s):
            raise errors.session_locked()
        return session.conn

    def release(self, conn: EngineConnection) -> None:
        conn.last_used = time.monotonic()
        conn.lock.release()

    def close_session(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            session.conn.close()

    def expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [sid for sid, s in self._sessions.items() if _idle_expired(s, now)]
            dropped = [self._sessions.pop(sid) for sid in expired]
        for session in dropped:
            session.conn.close()
            session.conn.lock.release()
        if expired:
            _log.debug("sessions_expired", count=len(expired))

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.conn.close()


def _idle_expired(session: _Session, now: float) -> bool:
    if now - session.conn.last_used < session.timeout_s:
        return False
    return session.conn.lock.acquire(blocking=False)  # held by us until closed


@dataclass(frozen=True)
class SessionRef:
    session_id: str
    timeout_s: float = 60.0
    check: bool = False
    close: bool = False


class Engine:
    """The one chDB instance of this process: owns the data directory."""

    def __init__(self, data_dir: Path, max_idle: int = 4, session_lock_wait_s: float = 5.0) -> None:
        self.data_dir = data_dir
        self._connection_string = tuning.connection_string(data_dir)
        self._open_lock = threading.Lock()
        self._keeper = self.open()  # keeps the engine up while pools churn
        self.version = self._keeper.run("SELECT version()").bytes().decode().strip()
        self.pool = ConnectionPool(self, max_idle)
        self.sessions = SessionRegistry(self, session_lock_wait_s)

    def open(self) -> EngineConnection:
        with self._open_lock:
            conn = chdb.connect(self._connection_string)  # type: ignore[no-untyped-call]  # chdb is unannotated
            return EngineConnection(conn)

    @contextmanager
    def connection(self, session: SessionRef | None) -> Iterator[Lease]:
        lease = Lease()
        if session is None:
            conn = self.pool.acquire()
            try:
                yield lease.bind(conn)
            finally:
                self.pool.release(conn, reusable=lease.reusable)
            return
        conn = self.sessions.acquire(session.session_id, session.timeout_s, session.check)
        try:
            yield lease.bind(conn)
        finally:
            self.sessions.release(conn)
            if session.close:
                self.sessions.close_session(session.session_id)

    def close(self) -> None:
        self.sessions.close()
        self.pool.close()
        self._keeper.close()


class Lease:
    """A borrowed connection; a sessionless request that changed its context spoils it."""

    def __init__(self) -> None:
        self.reusable = True
        self._conn: EngineConnection | None = None

    def bind(self, conn: EngineConnection) -> Lease:
        self._conn = conn
        return self

    @property
    def conn(self) -> EngineConnection:
        assert self._conn is not None  # bound before it is handed out
        return self._conn
