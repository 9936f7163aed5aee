"""The audit trail: one :class:`AuditEntry` per change (who, what, before, after, when,
from where), stored in the warehouse's ``audit_log`` table (migration 0007).

An entry is first written to the identity database's outbox, in the process that made
the change, and then moved to the warehouse; an entry the warehouse could not take stays
in the outbox and goes with the next one, so a change is never left unrecorded while
the warehouse is away. ``entry_id`` makes a repeated move harmless (the table
deduplicates on it).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shiftright_server.infra.access.db import Db, now_utc

if TYPE_CHECKING:
    from shiftright_server.infra.settings import ClickHouseSettings

COLUMNS = [
    "ts",
    "entry_id",
    "actor",
    "role",
    "action",
    "target",
    "before",
    "after",
    "address",
    "via",
]


@dataclass(frozen=True)
class AuditEntry:
    actor: str  # an e-mail, a token ("token <id>"), or "cli:<os user>"
    role: str
    action: str  # noun.verb: user.add, rules.apply, silence.add, errors.resolve ...
    target: str
    before: Any = None  # JSON-able; None: nothing before (a creation)
    after: Any = None  # JSON-able; None: nothing after (a deletion)
    address: str = ""
    via: str = ""  # dashboard | api | cli
    ts: datetime = field(default_factory=now_utc)
    entry_id: str = field(default_factory=lambda: secrets.token_hex(8))

    def row(self) -> list[Any]:
        state = [_json(self.before), _json(self.after)]
        return [
            self.ts,
            self.entry_id,
            self.actor,
            self.role,
            self.action,
            self.target,
            *state,
            self.address,
            self.via,
        ]


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, default=str)


class Audit(Protocol):
    def record(self, entry: AuditEntry) -> None: ...


class MemoryAudit:
    """Entries kept in a list (tests, and a process with no warehouse)."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


class WarehouseAudit:
    """Entries through the identity database's outbox into ``audit_log``."""

    def __init__(self, db: Db, clickhouse: ClickHouseSettings) -> None:
        self._db, self._ch = db, clickhouse

    def record(self, entry: AuditEntry) -> None:
        data = asdict(entry) | {"ts": entry.ts.isoformat()}
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO audit_outbox (entry) VALUES (?)", (json.dumps(data, default=str),)
            )
        self.flush()

    def flush(self) -> int:
        """Move what the outbox holds to the warehouse; 0 when it cannot be reached."""
        rows = self._db.all("SELECT seq, entry FROM audit_outbox ORDER BY seq LIMIT 1000")
        if not rows:
            return 0
        entries = [_entry(json.loads(text)) for _, text in rows]
        try:
            from shiftright_server.infra.clickhouse import get_client

            client = get_client(self._ch, database=self._ch.database)
            try:
                client.insert("audit_log", [e.row() for e in entries], column_names=COLUMNS)
            finally:
                client.close()
        except Exception:  # the warehouse is away: the outbox keeps them for the next try
            return 0
        with self._db.tx() as c:
            c.execute("DELETE FROM audit_outbox WHERE seq <= ?", (rows[-1][0],))
        return len(entries)


def _entry(data: dict[str, Any]) -> AuditEntry:
    data["ts"] = datetime.fromisoformat(data["ts"])
    return AuditEntry(**data)
