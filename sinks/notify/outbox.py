"""The notifier's durable memory: one SQLite file (``<state>/notify/outbox.db``).

* ``meta``: the :class:`Notifier`'s state and the next offset to consume per partition of
  ``alerts.v1``, always written together with the deliveries they produced — so after a
  crash the notifier resumes from a state and an offset that agree, and nothing it
  planned is lost.
* ``outbox``: every delivery (keyed by kind and idempotency key) with its attempts and
  state: pending, delivered or failed. A key already there is never added again, which
  is what stops a replay or a restart from sending a second e-mail.
* ``records``: delivery outcomes (:class:`NotificationRecord`) not yet acknowledged by
  Kafka; they are written in the same transaction as the outcome itself.

All methods are called from one thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from shiftright_server.schemas.alerts import NotificationRecord
from shiftright_server.sinks.notify.model import (
    PENDING,
    Delivery,
    dump_notification,
    load_notification,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
    notification TEXT NOT NULL,
    first_ts TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    next_at REAL NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, value TEXT NOT NULL);
"""


class Outbox:
    def __init__(self, path: Path, topic: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        known = self._meta("topic")
        if known is not None and known.decode() != topic:
            raise RuntimeError(
                f"{path} holds the state of {known.decode()!r}, not {topic!r}: "
                "use another state directory per namespace"
            )
        if known is None:
            with self.db:
                self.db.execute("BEGIN")
                self._set_meta("topic", topic.encode())

    def close(self) -> None:
        self.db.close()

    # -- state and offsets ---------------------------------------------------------------------
    def load_state(self) -> tuple[bytes | None, dict[int, int]]:
        offsets = self._meta("offsets")
        return self._meta("notifier"), (
            {int(p): int(o) for p, o in json.loads(offsets).items()} if offsets else {}
        )

    def save(
        self,
        notifier_state: bytes,
        offsets: dict[int, int],
        deliveries: Iterable[Delivery],
        now: float,
    ) -> list[Delivery]:
        """Atomically: the notifier's state, the offsets it has consumed up to, and the
        deliveries it planned. Returns the deliveries that were new (a key already in
        the outbox — pending, delivered or failed — is not added twice)."""
        added: list[Delivery] = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self._set_meta("notifier", notifier_state)
            self._set_meta("offsets", json.dumps({str(p): o for p, o in offsets.items()}).encode())
            for d in deliveries:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        d.kind,
                        d.key,
                        d.channel,
                        dump_notification(d.notification),
                        d.first_ts.isoformat(),
                        d.attempt,
                        d.next_at,
                        d.state,
                        d.error,
                        now,
                    ),
                )
                if cur.rowcount:
                    added.append(d)
        return added

    # -- deliveries ----------------------------------------------------------------------------
    def due(self, now: float, limit: int = 200) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first."""
        rows = self.db.execute(
            "SELECT kind, notification, first_ts, attempt, next_at, state, error FROM outbox "
            "WHERE state = ? AND next_at <= ? ORDER BY next_at, first_ts, rowid LIMIT ?",
            (PENDING, now, limit),
        ).fetchall()
        return [_delivery(row) for row in rows]

    def next_due(self) -> float | None:
        at: float | None
        (at,) = self.db.execute(
            "SELECT min(next_at) FROM outbox WHERE state = ?", (PENDING,)
        ).fetchone()
        return at

    def get(self, kind: str, key: str) -> Delivery | None:
        row = self.db.execute(
            "SELECT kind, notification, first_ts, attempt, next_at, state, error FROM outbox "
            "WHERE kind = ? AND key = ?",
            (kind, key),
        ).fetchone()
        return _delivery(row) if row else None

    def update(self, delivery: Delivery, records: Iterable[NotificationRecord], now: float) -> None:
        """A delivery's new attempt count / state, with the outcome records to publish."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE outbox SET attempt = ?, next_at = ?, state = ?, error = ?, updated_at = ? "
                "WHERE kind = ? AND key = ?",
                (
                    delivery.attempt,
                    delivery.next_at,
                    delivery.state,
                    delivery.error,
                    now,
                    delivery.kind,
                    delivery.key,
                ),
            )
            self._add_records(records)

    def add_records(self, records: Iterable[NotificationRecord]) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self._add_records(records)

    def _add_records(self, records: Iterable[NotificationRecord]) -> None:
        self.db.executemany(
            "INSERT INTO records (value) VALUES (?)", [(r.model_dump_json(),) for r in records]
        )

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, count() FROM outbox GROUP BY state").fetchall())

    def prune(self, before: float) -> int:
        """Forget finished deliveries last touched before ``before`` (epoch seconds)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cur = self.db.execute(
                "DELETE FROM outbox WHERE state != ? AND updated_at < ?", (PENDING, before)
            )
        return cur.rowcount

    # -- outcome records awaiting Kafka ------------------------------------------------------------
    def unpublished(self, after: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        return self.db.execute(
            "SELECT id, value FROM records WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ).fetchall()

    def published(self, ids: Iterable[int]) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])

    # -- helpers ---------------------------------------------------------------------------------
    def _meta(self, name: str) -> bytes | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return bytes(row[0]) if row else None

    def _set_meta(self, name: str, value: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


def _delivery(row: tuple[Any, ...]) -> Delivery:
    kind, notification, first_ts, attempt, next_at, state, error = row
    return Delivery(
        kind=kind,
        notification=load_notification(notification),
        first_ts=datetime.fromisoformat(first_ts),
        attempt=attempt,
        next_at=next_at,
        state=state,
        error=error,
    )
