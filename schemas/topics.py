"""Topic names, defined once (pattern ``<kind>.<domain>.v<N>``), and the topic plan: which
topics the pipeline needs, with how many partitions and which topic configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

EVENTS_USAGE: Final = "events.usage.v1"
EVENTS_ERROR: Final = "events.error.v1"
EVENTS_HEALTH: Final = "events.health.v1"
EVENTS_CHANGE: Final = "events.change.v1"
DLQ_EVENTS: Final = "dlq.events.v1"
ROLLUPS: Final = "rollups.v1"

EVENT_TOPIC_BY_KIND: Final[dict[str, str]] = {
    "usage": EVENTS_USAGE,
    "error": EVENTS_ERROR,
    "health": EVENTS_HEALTH,
    "change": EVENTS_CHANGE,
}
EVENT_TOPICS: Final[tuple[str, ...]] = tuple(EVENT_TOPIC_BY_KIND.values())
KIND_BY_EVENT_TOPIC: Final[dict[str, str]] = {t: k for k, t in EVENT_TOPIC_BY_KIND.items()}

#: Raw event topics accept payloads up to this size so that oversized events reach
#: the validator (and the dead letters) instead of failing in the producer.
RAW_TOPIC_MAX_MESSAGE_BYTES: Final = 2 * 1024 * 1024

#: Headers on dead-lettered messages.
HEADER_REASON: Final = "shiftright-reason"
HEADER_DETAIL: Final = "shiftright-detail"
HEADER_SOURCE_TOPIC: Final = "shiftright-source-topic"
HEADER_SOURCE_PARTITION: Final = "shiftright-source-partition"
HEADER_SOURCE_OFFSET: Final = "shiftright-source-offset"
HEADER_SOURCE_INDEX: Final = "shiftright-source-index"
HEADER_PAYLOAD_BYTES: Final = "shiftright-payload-bytes"


def named(topic: str, namespace: str = "") -> str:
    """The physical topic name in a namespace (``""`` means the plain name)."""
    return f"{namespace}.{topic}" if namespace else topic


def logical(physical: str, namespace: str = "") -> str:
    """Inverse of :func:`named`."""
    prefix = f"{namespace}." if namespace else ""
    return physical[len(prefix) :] if prefix and physical.startswith(prefix) else physical


# -- error analytics -------------------------------------------------------------------------
#: Each error with its group and health snapshot (GroupedError), keyed ``app|group_id``.
ERRORS_GROUPED: Final = "errors.grouped.v1"
#: Group rows after each change (ErrorGroup), keyed ``app|group_id``; compacted.
ERRORS_GROUPS: Final = "errors.groups.v1"
#: new / new_in_env / regressed / spiking / unignored (ErrorGroupTransition).
ERRORS_TRANSITIONS: Final = "errors.transitions.v1"
#: resolve / ignore decisions (ErrorGroupCommand), keyed ``app|group_id``.
ERRORS_COMMANDS: Final = "errors.commands.v1"
#: Internal: error events re-keyed ``app|env|host`` so they meet their host's health.
ERRORS_BY_HOST: Final = "errors.byhost.v1"
#: Internal: each error with its group (GroupedError without health) as soon as it is
#: grouped, keyed ``app|group_id``: what the group step counts and announces from.
ERRORS_ASSIGNED: Final = "errors.assigned.v1"

# -- alerting --------------------------------------------------------------------------------
#: Open-bucket snapshots (Rollup, cumulative so far) about every second, keyed ``app|env``:
#: what rules evaluate, so an alert need not wait for a bucket to close.
SIGNALS: Final = "signals.v1"
#: Alert transitions (AlertTransition), keyed ``rule|fingerprint``: the alert history.
ALERTS: Final = "alerts.v1"
#: Rules, subscriptions and silences (infra.alerting_config); compacted, one partition.
ALERTING_CONFIG: Final = "alerting.config.v1"
#: One record per notification delivery attempt outcome (NotificationRecord).
NOTIFICATIONS: Final = "notifications.v1"

# -- flags -----------------------------------------------------------------------------------
#: Flag files, flips and ticket-flag segment membership (``shiftright.flags.topic``);
#: compacted, one partition, read whole by every app's SDK.
FLAGS_CONFIG: Final = "flags.config.v1"


# -- the plan ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopicSet:
    """Topics created together: physical name -> partitions, and their topic configs."""

    partitions: dict[str, int]
    config: dict[str, str] = field(default_factory=dict)


def plan(namespace: str, partitions: int) -> list[TopicSet]:
    """Every topic the pipeline needs in ``namespace``, ``partitions`` per keyed topic."""
    return [
        *event_topic_plan(namespace, partitions),
        *error_topic_plan(namespace, partitions),
        *alerting_topic_plan(namespace, partitions),
        *flag_topic_plan(namespace),
    ]


def event_topic_plan(namespace: str, partitions: int) -> list[TopicSet]:
    """The raw event topics (accepting oversized payloads so they reach the dead letters),
    the dead letters and the rollups."""
    raw = {named(t, namespace): partitions for t in EVENT_TOPICS}
    derived = {named(t, namespace): partitions for t in (DLQ_EVENTS, ROLLUPS)}
    return [
        TopicSet(raw, {"max.message.bytes": str(RAW_TOPIC_MAX_MESSAGE_BYTES)}),
        TopicSet(derived),
    ]


def error_topic_plan(namespace: str, partitions: int) -> list[TopicSet]:
    """Error-analytics topics; ``errors.byhost.v1`` must have as many partitions as
    ``events.health.v1`` (the two are joined partition by partition). The group rows are
    compacted: the latest row per group is what matters."""
    plain = (ERRORS_BY_HOST, ERRORS_ASSIGNED, ERRORS_GROUPED, ERRORS_TRANSITIONS, ERRORS_COMMANDS)
    return [
        TopicSet({named(t, namespace): partitions for t in plain}),
        TopicSet({named(ERRORS_GROUPS, namespace): partitions}, {"cleanup.policy": "compact"}),
    ]


def alerting_topic_plan(namespace: str, partitions: int) -> list[TopicSet]:
    """Alerting topics: signals are partitioned like the events; alerts and notifications
    are few and read in order by one notifier, so one partition each; the configuration
    is one compacted partition that is never deleted."""
    plain = {named(SIGNALS, namespace): partitions}
    plain |= {named(t, namespace): 1 for t in (ALERTS, NOTIFICATIONS)}
    config = {"cleanup.policy": "compact", "retention.ms": "-1"}
    return [TopicSet(plain), TopicSet({named(ALERTING_CONFIG, namespace): 1}, config)]


def flag_topic_plan(namespace: str) -> list[TopicSet]:
    """The flag topic: one compacted partition that is never deleted (every app reads it
    whole, in order)."""
    config = {"cleanup.policy": "compact", "retention.ms": "-1"}
    return [TopicSet({named(FLAGS_CONFIG, namespace): 1}, config)]
