"""Assigning an error event to a group: pure, stateless, the same answer on every replay.

:class:`Grouper` turns an event into an :class:`Assignment` (fingerprint, group id,
rules version, title, culprit). It keeps no state, so it can run before a repartition
by group id: every worker with the same rules assigns the same event the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftright_server.schemas.events import ErrorEvent
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


@dataclass(frozen=True, slots=True)
class Assignment:
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


class Grouper:
    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()

    def assign(self, event: ErrorEvent) -> Assignment:
        root = root_cause(event)
        rule = self.rules.first_match(event.app, root)
        fp = fingerprint_of(root)
        if rule is not None and rule.fingerprint:
            fp = Fingerprint("rule", (rule.fingerprint,))
        group_id, merged_from = group_id_for(event.app, fp.digest), ""
        if rule is not None and rule.merge_into and rule.merge_into != group_id:
            group_id, merged_from = rule.merge_into, group_id
        return self._assignment(
            event.app, root, fp, group_id, rule.name if rule else "", merged_from
        )

    def _assignment(
        self,
        app: str,
        root: ExceptionInfo,
        fp: Fingerprint,
        group_id: str,
        rule: str,
        merged_from: str,
    ) -> Assignment:
        return Assignment(
            app=app,
            group_id=group_id,
            fingerprint=fp.digest,
            basis=fp.basis,
            rules_version=self.rules.version,
            rule=rule,
            exception_type=root.type,
            title=title_of(root),
            culprit=culprit_of(root),
            merged_from=merged_from,
        )
