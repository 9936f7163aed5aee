"""Real services for integration tests: one Kafka broker and one warehouse per session.

They are started here (Kafka from Maven Central jars, the embedded chDB warehouse) unless
SHIFTRIGHT_TEST_KAFKA_BOOTSTRAP / SHIFTRIGHT_TEST_CLICKHOUSE_URL name existing ones. If a
service cannot start, the tests that need it fail; nothing is skipped.

Each test gets its own namespace: its own topics, consumer groups and database. Creating
them is part of a test's cost, so a test asks only for what it uses: ``settings`` (topics
and schema), ``kafka_settings`` (topics only) or ``warehouse_settings`` (schema only); the
tests of a module that keep apart by app name share ``module_settings``.
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.kafka.launcher import KafkaLauncher
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.settings import (
    ClickHouseSettings,
    KafkaSettings,
    Settings,
    SinkSettings,
    StreamSettings,
)

from tests.integration.kafka_fixture import discard_kafka, resolve_kafka_jars, start_kafka
from tests.integration.warehouse_fixture import discard_warehouse, free_port, start_warehouse


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_jars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kafka's jars, resolved once for every broker of the session."""
    return resolve_kafka_jars(tmp_path_factory.mktemp("kafka-jars"))


def release_clients() -> None:
    """Destroy the Kafka clients tests left for the garbage collector while their broker
    still runs: after it is gone, each would log failed reconnects until the process ends."""
    gc.collect()


@pytest.fixture(scope="session")
def kafka_launcher(
    tmp_path_factory: pytest.TempPathFactory, kafka_jars: Path
) -> Iterator[KafkaLauncher]:
    """A broker started by our launcher (the launcher's own tests use it too)."""
    launcher = start_kafka(tmp_path_factory.mktemp("kafka"), jars=kafka_jars)
    try:
        yield launcher
    finally:
        release_clients()
        discard_kafka(launcher)


@pytest.fixture(scope="session")
def _spare_kafka(
    tmp_path_factory: pytest.TempPathFactory, kafka_jars: Path
) -> Iterator[KafkaLauncher]:
    launcher = start_kafka(tmp_path_factory.mktemp("spare-kafka"), jars=kafka_jars)
    try:
        yield launcher
    finally:
        release_clients()
        discard_kafka(launcher)


@pytest.fixture
def restartable_kafka(_spare_kafka: KafkaLauncher) -> KafkaLauncher:
    """A broker of the test's own, which it may stop and launch again. The tests that do so
    share it, one after the other: it holds only their few topics, so it restarts in
    seconds, and it is running when each of them begins."""
    if _spare_kafka.running_pid() is None:
        _spare_kafka.launch()
    return _spare_kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    external = os.environ.get("SHIFTRIGHT_TEST_KAFKA_BOOTSTRAP")
    if external:
        return external
    launcher: KafkaLauncher = request.getfixturevalue("kafka_launcher")
    return launcher.bootstrap


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
        discard_warehouse(proc)


def fresh_settings(kafka_bootstrap: str, clickhouse_url: str, state_dir: Path) -> Settings:
    """Settings of a new namespace (database named alike); nothing is created yet."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    return Settings(
        state_dir=state_dir,
        namespace=namespace,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        clickhouse=ClickHouseSettings(url=clickhouse_url, database=namespace),
        sink=SinkSettings(batch_seconds=0.5),
        streams=StreamSettings(idle_close_seconds=2.0),
    )


def create_namespace(settings: Settings) -> None:
    """Its topics and its schema, made side by side (one waits on the broker, the other
    on the warehouse)."""
    with ThreadPoolExecutor(1) as pool:
        schema = pool.submit(apply_schema, settings)
        create_topics(settings)
        schema.result()


@pytest.fixture
def settings(kafka_bootstrap: str, clickhouse_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: unique namespace/database, topics created, schema applied."""
    made = fresh_settings(kafka_bootstrap, clickhouse_url, tmp_path / "state")
    create_namespace(made)
    return made


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, clickhouse_url: str, tmp_path: Path) -> Settings:
    """Settings for a test that uses Kafka alone: its namespace's topics, no database."""
    made = fresh_settings(kafka_bootstrap, clickhouse_url, tmp_path / "state")
    create_topics(made)
    return made


@pytest.fixture
def warehouse_settings(clickhouse_url: str, tmp_path: Path) -> Settings:
    """Settings for a test that uses the warehouse alone: its database, no topics (the
    bootstrap names no broker, so a use of Kafka fails instead of passing by accident)."""
    made = fresh_settings("127.0.0.1:9", clickhouse_url, tmp_path / "state")
    apply_schema(made)
    return made


@pytest.fixture(scope="module")
def module_settings(
    kafka_bootstrap: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """One namespace, topics and schema for a whole module, whose tests keep apart by what
    they send (their own app names) and query only that. Not for tests that kill
    processes or count everything in a table."""
    made = fresh_settings(kafka_bootstrap, clickhouse_url, tmp_path_factory.mktemp("state"))
    create_namespace(made)
    return made


Sql = Callable[[str], list[tuple[Any, ...]]]


def sql_on(settings: Settings) -> Sql:
    """A function that runs a query in the settings' database and returns its rows."""
    client = get_client(settings.clickhouse, database=settings.clickhouse.database)

    def run(query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in client.query(query).result_rows]

    return run


@pytest.fixture
def sql(settings: Settings) -> Sql:
    return sql_on(settings)


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
