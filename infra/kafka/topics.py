"""Create topics idempotently, for the local broker or any real cluster.

:func:`create_topics` creates every topic of the plan (:func:`schemas.topics.plan`).

Contract: ``ensure_topics(bootstrap, {name: partitions}, config)`` returns once every
named topic exists and each of its partitions has a leader, so a producer or a Faust
worker started right after finds them. Topics that already exist are left as they are
(a different partition count is logged as ``topic_partitions_mismatched``, not changed:
changing it would move keys between partitions). Anything else raises
:class:`TopicCreationError`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic
from shiftright_server.schemas import topics as plans

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings

_log = structlog.get_logger(__name__)


class TopicCreationError(RuntimeError):
    """A topic could not be created, or did not get partition leaders in time."""


def create_topics(settings: Settings) -> list[str]:
    """Every topic the pipeline needs, on the configured cluster and namespace; returns
    the names created now (the others existed)."""
    k = settings.kafka
    durability = (
        {} if k.min_insync_replicas is None else {"min.insync.replicas": str(k.min_insync_replicas)}
    )
    created = []
    for topic_set in plans.plan(settings.namespace, k.partitions):
        created += ensure_topics(
            k.bootstrap_servers,
            topic_set.partitions,
            {**topic_set.config, **durability},
            replication_factor=k.replication_factor,
        )
    return created


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    config: Mapping[str, str] | None = None,
    *,
    replication_factor: int = -1,
    timeout: float = 30.0,
) -> list[str]:
    """Create the missing ones of ``topics``; returns the names created now.

    ``replication_factor=-1`` takes the cluster's ``default.replication.factor``
    (1 on the local broker). ``config`` applies to topics created now only.
    """
    if not topics:
        return []
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = _create(admin, topics, dict(config or {}), replication_factor, timeout)
    _wait_for_leaders(admin, topics, timeout)
    return created


def _create(
    admin: AdminClient,
    topics: Mapping[str, int],
    config: dict[str, str],
    replication_factor: int,
    timeout: float,
) -> list[str]:
    new = [
        NewTopic(name, num_partitions=parts, replication_factor=replication_factor, config=config)
        for name, parts in topics.items()
    ]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicCreationError(f"cannot create topic {name!r}: {exc}") from exc
            continue
        created.append(name)
        _log.info("topic_created", topic=name, partitions=topics[name])
    return created


def _wait_for_leaders(admin: AdminClient, topics: Mapping[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=max(1.0, deadline - time.monotonic()))
        pending = sorted(name for name in topics if not _led(metadata, name))
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TopicCreationError(f"topics without partition leaders: {pending}")
        time.sleep(0.1)
    for name, parts in topics.items():
        actual = len(metadata.topics[name].partitions)
        if actual != parts:
            _log.warning("topic_partitions_mismatched", topic=name, wanted=parts, actual=actual)


def _led(metadata: ClusterMetadata, name: str) -> bool:
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(p.leader >= 0 and p.error is None for p in topic.partitions.values())
