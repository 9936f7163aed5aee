"""Which incarnation of a topic the sink reads, and which stored positions are its own.

A topic deleted and created again, or a topic of the same name on another Kafka cluster,
starts its offsets again at 0: positions stored from one incarnation must never make the
sink skip messages of another. Kafka names each incarnation by its topic id. Every row the
sink stores carries the id of the incarnation it came from (``_topic_id``), and the
``topic_incarnations`` table lists each incarnation a sink has read.

Rows stored before rows carried topic ids hold ``''``. They belong to the first
incarnation recorded for their topic (the one the upgraded sink found), so an upgrade
neither stores anything twice nor skips anything, and any later incarnation ignores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient

#: The topic id of rows stored before rows carried one.
LEGACY = ""
TABLE = "topic_incarnations"
COLUMNS = ("topic", "topic_id", "adopts_legacy", "seen_at")

#: Stored positions of one topic: topic id -> partition -> highest stored offset.
Stored = dict[str, dict[int, int]]


class TopicIds(Protocol):
    def topic_ids(self, topics: Sequence[str]) -> dict[str, str]:
        """The topic id of each topic; raise KafkaException when the cluster cannot tell."""


class KafkaTopicIds:
    """:class:`TopicIds` from the cluster's metadata. confluent-kafka gives topic ids only
    through the admin API (``describe_topics``), not in a consumer's ``list_topics``."""

    def __init__(self, admin: AdminClient, timeout: float = 10.0) -> None:
        self._admin = admin
        self._timeout = timeout

    def topic_ids(self, topics: Sequence[str]) -> dict[str, str]:
        futures = self._admin.describe_topics(
            TopicCollection(list(topics)), request_timeout=self._timeout
        )
        return {name: str(f.result(self._timeout).topic_id) for name, f in futures.items()}


@dataclass(frozen=True)
class Incarnation:
    """One incarnation of a topic as the warehouse knows it."""

    topic: str
    topic_id: str
    positions: dict[int, int]  # highest stored offset per partition, this incarnation's
    new: bool  # no sink has recorded it yet
    adopts_legacy: bool  # the rows stored without a topic id are its own
    others: dict[str, int]  # other incarnations with stored rows -> their highest offset


def resolve(topic: str, topic_id: str, recorded: dict[str, bool], stored: Stored) -> Incarnation:
    """The incarnation ``topic_id`` of ``topic``, given the incarnations recorded for the
    topic (topic id -> adopts the legacy rows) and the positions stored per topic id."""
    new = topic_id not in recorded
    # The first incarnation recorded adopts the rows stored without a topic id.
    adopts = recorded.get(topic_id, not recorded and not set(stored) - {topic_id, LEGACY})
    positions = dict(stored.get(topic_id, {}))
    if adopts:
        for partition, offset in stored.get(LEGACY, {}).items():
            positions[partition] = max(positions.get(partition, -1), offset)
    others = {
        other: max(offsets.values())
        for other, offsets in stored.items()
        if other != topic_id and not (other == LEGACY and adopts) and offsets
    }
    return Incarnation(topic, topic_id, positions, new, adopts, others)
