"""Unit tests run with no services: any attempt to reach Kafka or ClickHouse fails the test."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest


class ServiceAccessInUnitTest(AssertionError):
    pass


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ServiceAccessInUnitTest(
            f"unit tests must not open {what}; use a fake or move the test to tests/integration"
        )

    return refuse


@pytest.fixture(autouse=True)
def _no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    import clickhouse_connect
    import confluent_kafka
    import confluent_kafka.admin

    monkeypatch.setattr(socket.socket, "connect", _refuse("a network connection"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("a network connection"))
    monkeypatch.setattr(socket, "create_connection", _refuse("a network connection"))
    # librdkafka opens its sockets in C, so the client classes themselves are refused,
    # also where project modules imported them by name.
    refused = {
        confluent_kafka.Producer: _refuse("a Kafka producer"),
        confluent_kafka.Consumer: _refuse("a Kafka consumer"),
        confluent_kafka.admin.AdminClient: _refuse("a Kafka admin client"),
        clickhouse_connect.get_client: _refuse("a ClickHouse client"),
    }
    monkeypatch.setattr(confluent_kafka, "Producer", refused[confluent_kafka.Producer])
    monkeypatch.setattr(confluent_kafka, "Consumer", refused[confluent_kafka.Consumer])
    monkeypatch.setattr(
        confluent_kafka.admin, "AdminClient", refused[confluent_kafka.admin.AdminClient]
    )
    monkeypatch.setattr(clickhouse_connect, "get_client", refused[clickhouse_connect.get_client])
    for name, module in list(sys.modules.items()):
        if not name.startswith(_PROJECT) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if _hashable(value) and value in refused:
                monkeypatch.setattr(module, attr, refused[value])


_PROJECT = ("shiftright_server.", "shiftright.")


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
