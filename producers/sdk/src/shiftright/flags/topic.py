"""The flag topic's records, folded into one :class:`Snapshot` per app.

``flags.config.v1`` is compacted, one partition; the last value of each key wins and a
record without a value (a tombstone) deletes its key:

* ``file:<app>``: the applied flag file, ``{"version", "yaml", "flags": [...],
  "applied_by", "applied_at", "source"}`` (``flags``: the validated definitions as JSON);
* ``flip:<app>|<flag>|<env>``: a flip in force (on, off or a variant, by whom and why);
  a tombstone restores the file's state;
* ``member:<app>|<flag>|<env>|<customer>``: ``{"in": true|false, "count": n}``, a
  customer joining or leaving a ticket flag's segment (a tombstone also takes it out).

The SDK folds the topic to evaluate; the server folds it to serve flagd JSON and OFREP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shiftright.flags.evaluate import Snapshot

TOPIC = "flags.config.v1"
FILE_PREFIX = "file:"
FLIP_PREFIX = "flip:"
MEMBER_PREFIX = "member:"


def file_key(app: str) -> bytes:
    return f"{FILE_PREFIX}{app}".encode()


def flip_key(app: str, flag: str, env: str) -> bytes:
    return f"{FLIP_PREFIX}{app}|{flag}|{env}".encode()


def member_key(app: str, flag: str, env: str, customer: str) -> bytes:
    return f"{MEMBER_PREFIX}{app}|{flag}|{env}|{customer}".encode()


@dataclass
class _App:
    file: dict[str, Any] = field(default_factory=dict)
    flips: dict[str, dict[str, Any]] = field(default_factory=dict)  # "flag|env" -> flip
    members: dict[str, set[str]] = field(default_factory=dict)  # "flag|env" -> customers


class Folder:
    """Folds records (in offset order) into the state of every app, or of one app."""

    def __init__(self, app: str | None = None) -> None:
        self.app = app
        self.apps: dict[str, _App] = {}
        self.position = 0  # the next offset to read

    def fold(self, key: bytes | None, value: bytes | None, offset: int) -> bool:
        """Apply one record; True when an app's state changed."""
        self.position = offset + 1
        if not key:
            return False
        text = key.decode("utf-8", "replace")
        prefix, _, rest = text.partition(":")
        parts = rest.split("|")
        if self.app is not None and parts[0] != self.app:
            return False
        try:
            doc = json.loads(value) if value else None
        except ValueError:
            return False
        state = self.apps.setdefault(parts[0], _App())
        if prefix + ":" == FILE_PREFIX and len(parts) == 1:
            state.file = doc if isinstance(doc, dict) else {}
            return True
        if prefix + ":" == FLIP_PREFIX and len(parts) == 3:
            where = f"{parts[1]}|{parts[2]}"
            if isinstance(doc, dict):
                state.flips[where] = doc
                return True
            return state.flips.pop(where, None) is not None
        if prefix + ":" == MEMBER_PREFIX and len(parts) == 4:
            return _member(state.members.setdefault(f"{parts[1]}|{parts[2]}", set()), parts[3], doc)
        return False

    def snapshot(self, app: str) -> Snapshot:
        state = self.apps.get(app) or _App()
        return Snapshot(
            app=app,
            version=int(state.file.get("version", 0)),
            flags=list(state.file.get("flags") or []),
            overrides={k: dict(v) for k, v in state.flips.items()},
            members={k: frozenset(v) for k, v in state.members.items() if v},
        )

    def flips(self, app: str) -> dict[str, dict[str, Any]]:
        state = self.apps.get(app)
        return dict(state.flips) if state else {}


def _member(members: set[str], customer: str, doc: Any) -> bool:
    if isinstance(doc, dict) and doc.get("in", True):
        if customer in members:
            return False
        members.add(customer)
        return True
    if customer not in members:
        return False
    members.discard(customer)
    return True
