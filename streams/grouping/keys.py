"""Kafka message keys for the error-analytics topics.

Raw errors are keyed ``app|env|exception_type`` (``schemas.events.partition_key``), which
puts neither a host's errors next to its health (keyed ``app|env|host``) nor a group's
errors in one place (a group spans envs, and a chained error's reported type is not its
root cause's). Hence two re-keys: by host to meet health, then by group.
"""

from __future__ import annotations

from shiftright_server.schemas.events import ErrorEvent, HealthEvent
from shiftright_server.schemas.records import ErrorGroupCommand, GroupedError


def host_key(event: ErrorEvent | HealthEvent) -> bytes:
    """``app|env|host``: equal to a health event's own partition key."""
    return f"{event.app}|{event.env}|{event.host}".encode()


def group_key(record: GroupedError | ErrorGroupCommand) -> bytes:
    """``app|group_id``: a group's errors and the commands about it meet here."""
    return f"{record.app}|{record.group_id}".encode()
