"""Resolve / ignore / unresolve from the dashboard: the same
:class:`~shiftright_server.schemas.records.ErrorGroupCommand` the ``shiftright errors``
commands send, to ``errors.commands.v1``, keyed ``app|group_id`` so it reaches the stream
worker's partition that holds the group. The worker applies it in order with the errors;
the group's new status shows in ``error_groups`` when it has.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.records import ErrorGroupCommand

Decision = Literal["resolve", "ignore", "unresolve"]
DECISIONS: tuple[Decision, ...] = ("resolve", "ignore", "unresolve")


class CommandFailed(Exception):
    """Kafka did not acknowledge the command."""


class CommandSender(Protocol):
    def send(self, cmd: ErrorGroupCommand) -> None: ...

    def close(self) -> None: ...


#: How long an ignore may last, as the form offers it ('' = until unignored).
IGNORE_FOR: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def command(
    app: str,
    group_id: str,
    decision: Decision,
    actor: str,
    ignore_for: str = "",
    ignore_count: int = 0,
) -> ErrorGroupCommand:
    """The command; an ignore may end after a time (``ignore_for``, a key of
    :data:`IGNORE_FOR`) or after ``ignore_count`` more errors, as the CLI's ``--until`` and
    ``--until-count``."""
    now = datetime.now(UTC)
    until = now + IGNORE_FOR[ignore_for] if decision == "ignore" and ignore_for else None
    count = ignore_count if decision == "ignore" else 0
    return ErrorGroupCommand(
        app=app,
        group_id=group_id,
        action=decision,
        ts=now,
        actor=actor,
        ignore_until=until,
        ignore_until_count=count,
    )


def command_key(cmd: ErrorGroupCommand) -> bytes:
    """The partition key the stream worker groups a group's errors and commands by."""
    return f"{cmd.app}|{cmd.group_id}".encode()


def producer_settings(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",  # where the Faust worker expects keys to land
        "enable.idempotence": True,
        "message.timeout.ms": 10_000,
    }


class KafkaCommands:
    """Sends each command and waits for Kafka's acknowledgement (one producer, reused)."""

    def __init__(self, settings: Settings) -> None:
        self._bootstrap = settings.kafka.bootstrap_servers
        self._topic = topics.named(topics.ERRORS_COMMANDS, settings.namespace)
        self._producer: Any = None
        self._lock = threading.Lock()

    def send(self, cmd: ErrorGroupCommand) -> None:
        from confluent_kafka import Producer

        outcome: list[str | None] = []
        with self._lock:
            if self._producer is None:
                self._producer = Producer(producer_settings(self._bootstrap))
            self._producer.produce(
                self._topic,
                cmd.model_dump_json().encode(),
                command_key(cmd),
                on_delivery=lambda err, _msg: outcome.append(None if err is None else str(err)),
            )
            self._producer.flush(15)
        if outcome != [None]:
            raise CommandFailed(outcome[0] if outcome else "no acknowledgement within 15 s")

    def close(self) -> None:
        """Let go of the producer (its threads end with it)."""
        with self._lock:
            if self._producer is not None:
                self._producer.flush(5)
                self._producer = None
