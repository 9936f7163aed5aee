"""Where an event is in Kafka, and the id an event without one gets from it.

The sink gives an event that arrived without an ``event_id`` an id derived from its
position; the stream worker's re-key must give the same error the same id, so both take
it from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Position:
    """Where an event is: a Kafka message, and its index when the message is a batch."""

    topic: str
    partition: int
    offset: int
    index: int = 0

    def at(self, index: int) -> Position:
        return Position(self.topic, self.partition, self.offset, index)


def position_id(pos: Position) -> uuid.UUID:
    """A stable id for an event that arrived without one: derived from where it is."""
    return uuid.uuid5(_ID_NAMESPACE, f"{pos.topic}/{pos.partition}/{pos.offset}/{pos.index}")


def position_id_later(msg: Position, index: int) -> Callable[[], uuid.UUID]:
    """The :func:`position_id` of event ``index`` of the message at ``msg``, made only when
    called: only an event that arrives without an id needs one."""
    return lambda: position_id(msg.at(index))


_ID_NAMESPACE = uuid.UUID("6f1c2a53-3f0e-4c59-9a51-8f1d7c3b2e10")
