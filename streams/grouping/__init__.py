"""Error grouping: pure parts the stream worker wraps (no I/O, no wall clock).

Flow for one error event::

    Grouper(rules).assign(event)            -> Assignment (fingerprint, group id, title ...)
    HealthJoin.add_error / add_health       -> Attached (error + snapshot within 60 s)
    grouped_error(event, assignment, ...)   -> GroupedError      (errors.assigned.v1 at once,
                                                                  errors.grouped.v1 with health)
    GroupBook.apply(grouped_error)          -> transitions       (errors.transitions.v1)
    GroupBook.take_rows()                   -> ErrorGroup rows   (errors.groups.v1)

``stages`` wraps these per partition number for the Faust agents (``AttachStage``,
``GroupStage``); ``keys`` gives the message keys of the two re-keys.

Modules: ``normalise`` (messages), ``chain`` (root cause), ``fingerprint``, ``rules``
(YAML), ``assign``, ``state`` (groups, status, transitions), ``spike``, ``distinct``
(users/customers), ``health`` (snapshot cache and join), ``enrich``, ``frames`` (live
exception to event fields).
"""

from shiftright_server.streams.grouping.assign import Assignment, Grouper
from shiftright_server.streams.grouping.enrich import grouped_error
from shiftright_server.streams.grouping.health import Attached, HealthCache, HealthJoin, Snapshot
from shiftright_server.streams.grouping.rules import Rules, RulesError
from shiftright_server.streams.grouping.spike import SpikePolicy
from shiftright_server.streams.grouping.state import GroupBook, GroupState

__all__ = [
    "Assignment",
    "Attached",
    "GroupBook",
    "GroupState",
    "Grouper",
    "HealthCache",
    "HealthJoin",
    "Rules",
    "RulesError",
    "Snapshot",
    "SpikePolicy",
    "grouped_error",
]
