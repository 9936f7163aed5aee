"""The unit-test guard itself: a test that reaches for a service fails loudly."""

import socket

import pytest

from tests.unit.conftest import ServiceAccessInUnitTest


def test_opening_a_socket_fails_the_test() -> None:
    with pytest.raises(ServiceAccessInUnitTest):
        socket.create_connection(("127.0.0.1", 9092))


def test_creating_a_kafka_producer_fails_the_test() -> None:
    import confluent_kafka

    with pytest.raises(ServiceAccessInUnitTest):
        confluent_kafka.Producer({"bootstrap.servers": "127.0.0.1:9092"})


def test_creating_a_clickhouse_client_fails_the_test() -> None:
    import clickhouse_connect

    with pytest.raises(ServiceAccessInUnitTest):
        clickhouse_connect.get_client(host="127.0.0.1")


def test_project_modules_cannot_reach_kafka_either() -> None:
    from shiftright_server.producers.emitter import Emitter

    with pytest.raises(ServiceAccessInUnitTest):
        Emitter("127.0.0.1:9092")
