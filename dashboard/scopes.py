"""Which apps and environments exist, and the app/env filters of a request checked
against them (an unknown one is a 404 that names what is known)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from shiftright_server.dashboard import queries
from shiftright_server.dashboard.warehouse import Reader

CACHE_SECONDS = 5.0


class UnknownScope(LookupError):
    """An app or env the warehouse has no data for."""


@dataclass(frozen=True)
class Scope:
    app: str  # '' = every app
    env: str  # '' = every env

    def params(self) -> dict[str, str]:
        return {"app": self.app, "env": self.env}


class Scopes:
    """The app × env pairs with data, cached for a few seconds."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._pairs: list[tuple[str, str]] = []
        self._at = float("-inf")
        self._lock = threading.Lock()

    def pairs(self) -> list[tuple[str, str]]:
        with self._lock:
            if time.monotonic() - self._at > CACHE_SECONDS:
                rows = self._reader.query(queries.SCOPES, {}).rows
                self._pairs = [(str(a), str(e)) for a, e in rows]
                self._at = time.monotonic()
            return self._pairs

    def check(self, app: str, env: str) -> Scope:
        """The filter asked for, when the warehouse knows it."""
        pairs = self.pairs()
        apps = sorted({a for a, _ in pairs})
        if app and app not in apps:
            raise UnknownScope(f"unknown app {app!r}; apps with data: {_listed(apps)}")
        envs = sorted({e for a, e in pairs if not app or a == app})
        if env and env not in envs:
            where = f" for app {app!r}" if app else ""
            raise UnknownScope(f"unknown env {env!r}{where}; envs with data: {_listed(envs)}")
        return Scope(app, env)

    def selected(self, scope: Scope) -> list[tuple[str, str]]:
        return [
            (a, e)
            for a, e in self.pairs()
            if (not scope.app or a == scope.app) and (not scope.env or e == scope.env)
        ]


def _listed(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "none yet"
