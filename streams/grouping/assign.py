"""Assigning an error event to a group: pure, stateless, the same answer on every replay.

:class:`Grouper` turns an event into an :class:`Assignment` (fingerprint, group id,
rules version, title, culprit). It keeps nothing that could change an answer (only what
it derived from frames, to derive it once), so it can run before a repartition by group
id: every worker with the same rules assigns the same event the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from shiftright_server.schemas.events import ErrorEvent, Frame
from shiftright_server.schemas.records import GroupBasis
from shiftright_server.streams.grouping.chain import ExceptionInfo, root_cause
from shiftright_server.streams.grouping.fingerprint import (
    Fingerprint,
    culprit_of,
    fingerprint_of,
    group_id_for,
    title_of,
)
from shiftright_server.streams.grouping.rules import Rules


class Assignment(NamedTuple):
    app: str
    group_id: str
    fingerprint: str  # hex digest
    basis: GroupBasis
    rules_version: int
    rule: str  # the rule's name, "" when the default grouping decided
    exception_type: str  # of the root cause
    title: str
    culprit: str
    merged_from: str = ""  # the group id a merge rule redirected this error from


#: What grouping derives from an app and a root cause's type and frames, kept per
#: distinct (app, type, frames) (all dropped when full).
PATHS_KEPT = 20_000
_PathKey = tuple[str, str, tuple[tuple[str, str, str, bool], ...]]
_IdKey = tuple[object, ...]  # app, type, then the id of each frame


@dataclass(frozen=True, slots=True)
class _Path:
    fingerprint: Fingerprint
    digest: str
    group_id: str
    culprit: str


class Grouper:
    """Assigns events to groups. The fingerprint, group id and culprit depend only on the
    app and the root cause's type and frames (never a line number), which recur in error
    after error, so they are kept per distinct (app, type, frames); the message (title,
    the message fingerprint of a stackless error) and the rules are read every time."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()
        self._paths: dict[_PathKey, _Path] = {}
        #: The same, by the identities of the frame objects (the fast path shares one
        #: object per distinct frame): each entry holds its frames, so no other object
        #: can have their ids while it is kept.
        self._by_frames: dict[_IdKey, tuple[tuple[Frame, ...], _Path]] = {}

    def assign(self, event: ErrorEvent) -> Assignment:
        root = root_cause(event)
        rule = self.rules.first_match(event.app, root)
        path = self._path(event.app, root)
        fp, digest, group_id = path.fingerprint, path.digest, path.group_id
        if rule is not None and rule.fingerprint:
            fp = Fingerprint("rule", (rule.fingerprint,))
            digest = fp.digest
            group_id = group_id_for(event.app, digest)
        merged_from = ""
        if rule is not None and rule.merge_into and rule.merge_into != group_id:
            group_id, merged_from = rule.merge_into, group_id
        return Assignment(  # (positional: the order of the fields)
            event.app,
            group_id,
            digest,
            fp.basis,
            self.rules.version,
            rule.name if rule else "",
            root.type,
            title_of(root),
            path.culprit,
            merged_from,
        )

    def _path(self, app: str, root: ExceptionInfo) -> _Path:
        ids = (app, root.type, *map(id, root.frames))
        kept = self._by_frames.get(ids)
        if kept is not None:
            return kept[1]
        frames = tuple((f.module, f.function, f.filename, f.in_app) for f in root.frames)
        key = (app, root.type, frames)
        found = self._paths.get(key)
        if found is not None:
            path = found
        else:
            fp = fingerprint_of(root)
            digest = fp.digest
            path = _Path(fp, digest, group_id_for(app, digest), culprit_of(root))
            if fp.basis != "stack":  # by the message without a usable stack: not kept
                return path
            if len(self._paths) >= PATHS_KEPT:
                self._paths.clear()
            self._paths[key] = path
        if len(self._by_frames) >= PATHS_KEPT:
            self._by_frames.clear()
        self._by_frames[ids] = (root.frames, path)
        return path
