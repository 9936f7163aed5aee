"""The app's flags: the compiled copy every evaluation reads, and who is told of changes.

Contract:
- App thread (:meth:`FlagStore.evaluate`): reads one dict that is replaced whole, never
  changed in place, so it takes no lock, does no I/O and never raises.
- Feed thread (:meth:`FlagStore.replace`): compiles a new snapshot for the app's
  environment, swaps it in, then calls each listener with the names of the flags whose
  answer may have changed (OpenFeature's configuration-changed event).
- Between feeds the store keeps its last copy: a server away changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from shiftright.flags.evaluate import Compiled, Result, Snapshot, compile_snapshot

Listener = Callable[[list[str]], None]
#: Evaluation outcome: value, variant, reason, error code ("" when none).
Evaluation = tuple[Any, str, str, str]
_log = logging.getLogger("shiftright.flags")


class FlagStore:
    def __init__(self, env: str) -> None:
        self.env = env
        self.snapshot = Snapshot()
        self.compiled: dict[str, Compiled] = {}
        self.source = ""  # "" nothing yet, "file" or "server"
        self.loaded = threading.Event()
        self.listeners: list[Listener] = []
        self.evaluations = 0  # approximate (no lock on the app thread)
        self.errors = 0

    def replace(self, snapshot: Snapshot, source: str) -> list[str]:
        """Serve ``snapshot`` from now on; returns (and tells listeners) what changed."""
        compiled = compile_snapshot(snapshot, self.env)
        changed = _changed(self.snapshot, snapshot, self.env)
        self.snapshot, self.compiled, self.source = snapshot, compiled, source
        self.loaded.set()
        if changed:
            for listener in list(self.listeners):
                try:
                    listener(changed)
                except Exception:
                    _log.exception("flag listener failed")
        return changed

    def evaluate(
        self,
        name: str,
        user: str = "",
        customer: str = "",
        attributes: Mapping[str, str] | None = None,
    ) -> Evaluation:
        """(value, variant, reason, error); a flag it does not know gives FLAG_NOT_FOUND."""
        self.evaluations += 1
        compiled = self.compiled.get(name)
        if compiled is None:
            return (None, "", "ERROR", "FLAG_NOT_FOUND")
        try:
            result: Result = compiled.evaluate(user, customer, attributes or {})
        except Exception:
            self.errors += 1
            return (None, "", "ERROR", "GENERAL")
        return (*result, "")


def _changed(old: Snapshot, new: Snapshot, env: str) -> list[str]:
    """Flags whose definition, flip in ``env`` or segment in ``env`` differ."""
    before = {str(f.get("name")): f for f in old.flags}
    after = {str(f.get("name")): f for f in new.flags}
    names = set(before) | set(after)
    out = []
    for name in sorted(names):
        where = f"{name}|{env}"
        if (
            before.get(name) != after.get(name)
            or old.overrides.get(where) != new.overrides.get(where)
            or old.members.get(where) != new.members.get(where)
        ):
            out.append(name)
    return out
