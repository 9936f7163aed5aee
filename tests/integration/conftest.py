"""Real services for integration tests: one Kafka broker and one warehouse per session.

They are started here (Kafka from Maven Central jars, the embedded chDB warehouse) unless
SHIFTRIGHT_TEST_KAFKA_BOOTSTRAP / SHIFTRIGHT_TEST_CLICKHOUSE_URL name existing ones. If a
service cannot start, the tests that need it fail; nothing is skipped. Each test gets its
own namespace: its own topics, consumer groups and database.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.settings import (
    ClickHouseSettings,
    KafkaSettings,
    Settings,
    SinkSettings,
    StreamSettings,
)

from tests.integration.kafka_fixture import start_kafka, stop_kafka
from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("SHIFTRIGHT_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    launcher = start_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        yield launcher.bootstrap
    finally:
        stop_kafka(launcher)


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("SHIFTRIGHT_TEST_CLICKHOUSE_URL")
    if external:
        yield external
        return
    proc, url = start_warehouse(tmp_path_factory.mktemp("warehouse") / "data", free_port())
    try:
        yield url
    finally:
        stop_warehouse(proc)


@pytest.fixture
def settings(kafka_bootstrap: str, clickhouse_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: unique namespace/database, topics created, schema applied."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    made = Settings(
        state_dir=tmp_path / "state",
        namespace=namespace,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        clickhouse=ClickHouseSettings(url=clickhouse_url, database=namespace),
        sink=SinkSettings(batch_seconds=0.5),
        streams=StreamSettings(idle_close_seconds=2.0),
    )
    create_topics(made)
    apply_schema(made)
    return made


@pytest.fixture
def sql(settings: Settings) -> Callable[[str], list[tuple[Any, ...]]]:
    client = get_client(settings.clickhouse, database=settings.clickhouse.database)

    def run(query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in client.query(query).result_rows]

    return run


def scalar(client: Client, query: str) -> int:
    """The one number a query such as ``SELECT count() ...`` answers."""
    answer = client.command(query)
    assert isinstance(answer, int | str), answer
    return int(answer)


def wait_for(
    check: Callable[[], bool], timeout: float, what: str | Callable[[], str], interval: float = 0.5
) -> None:
    """Poll ``check`` until true; fail with ``what`` (a callable is asked at failure time,
    so it can show the state at the end) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")
