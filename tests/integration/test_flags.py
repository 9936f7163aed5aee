"""Flags on the real broker: ``shiftright flags`` writes the compacted topic, an app's SDK
reads it (its own thread, no I/O per evaluation) and every state change is a change event.

The unit tests' fake topic (``tests/unit/flags/test_flips.py``) folds records with the
same :class:`Folder` this test reads the real topic with."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiftright
from confluent_kafka import Consumer, TopicPartition
from shiftright_server.infra.cli import app
from shiftright_server.infra.settings import Settings, to_env
from shiftright_server.schemas import topics
from typer.testing import CliRunner

from tests.integration.conftest import wait_for
from tests.unit.flags.test_flag_file import GOOD


def cli(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=to_env(settings) | {"COLUMNS": "220"})


@pytest.fixture
def app_sdk(kafka_settings: Settings, tmp_path: Path) -> Iterator[Path]:
    saved = tmp_path / "flags.json"
    shiftright.init(
        app="checkout",
        env="prod",
        kafka=kafka_settings.kafka.bootstrap_servers,
        namespace=kafka_settings.namespace,
        flags_file=str(saved),
        health_interval=0,
        hooks=False,
    )
    try:
        yield saved
    finally:
        shiftright.close(2)


def _changes(settings: Settings, count: int) -> list[dict[str, Any]]:
    topic = topics.named(topics.EVENTS_CHANGE, settings.namespace)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "t-flags"}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.kafka.partitions)])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                found.append(json.loads(msg.value() or b"{}"))
    finally:
        consumer.close()
    return sorted(found, key=lambda e: e["ts"])


def test_apply_flip_restore_reach_the_app_and_the_timeline(
    kafka_settings: Settings, app_sdk: Path, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text(GOOD)
    applied = cli(kafka_settings, "flags", "apply", str(flags), "--yes", "--author", "alice")
    assert applied.exit_code == 0, applied.output
    assert "3 added" in applied.output and "applied version 1 by alice" in applied.output

    wait_for(lambda: shiftright.flag("new-checkout", False), 20, "the SDK to see the toggle on")
    assert shiftright.flag("layout", "v0", user_id="u-1") == "v2"

    flipped = cli(
        kafka_settings,
        "flags",
        "flip",
        "new-checkout",
        "--app",
        "checkout",
        "--env",
        "prod",
        "--to",
        "off",
        "--by",
        "bob",
        "--reason",
        "checkout errors",
    )
    assert flipped.exit_code == 0, flipped.output
    wait_for(lambda: not shiftright.flag("new-checkout", False), 10, "the SDK to see the flip")
    listed = cli(kafka_settings, "flags", "list", "--app", "checkout")
    assert "prod→off by bob" in listed.output, listed.output

    restored = cli(
        kafka_settings,
        "flags",
        "restore",
        "new-checkout",
        "--app",
        "checkout",
        "--env",
        "prod",
        "--by",
        "carol",
    )
    assert restored.exit_code == 0, restored.output
    wait_for(lambda: shiftright.flag("new-checkout", False), 10, "the SDK to see the restore")

    events = _changes(kafka_settings, 4)
    seen = [(e["name"], e["env"], e["previous_value"], e["value"], e["actor"]) for e in events]
    assert sorted(seen[:2]) == [  # the file turned on what it names on (preprod stays off)
        ("layout", "prod", "off", "on", "alice"),
        ("new-checkout", "prod", "off", "on", "alice"),
    ]
    assert seen[2:] == [
        ("new-checkout", "prod", "on", "off", "bob"),
        ("new-checkout", "prod", "off", "on", "carol"),
    ]
    saved = json.loads(app_sdk.read_text())  # the fail-static copy follows the server
    assert saved["version"] == 1 and saved["overrides"]["new-checkout|prod"]["to"] == ""


def test_a_malformed_file_is_refused_with_line_and_field(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text(GOOD.replace("default: classic", "default: narrow"))
    refused = cli(kafka_settings, "flags", "apply", str(flags), "--yes")
    assert refused.exit_code == 2
    assert f"{flags}:7: flags[1] (layout): Value error, unknown variant(s) narrow" in refused.output
    assert cli(kafka_settings, "flags", "show", "checkout").exit_code == 1  # nothing applied


def test_a_stock_ofrep_provider_reads_the_flags_from_the_gateway(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    from openfeature.contrib.provider.ofrep import OFREPProvider
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import FlagNotFoundError
    from shiftright_server.infra.access.ingest_keys import KeyStore, keys_path
    from shiftright_server.infra.flags_config import FlagTopic
    from shiftright_server.producers.gateway.server import assemble

    from tests.integration.test_sdk_apps import serve_asgi

    FlagTopic(kafka_settings.kafka.bootstrap_servers, kafka_settings.namespace).apply(GOOD, "a")
    keys_path(kafka_settings).parent.mkdir(parents=True, exist_ok=True)
    store = KeyStore(keys_path(kafka_settings))
    token, _ = store.create("checkout", "prod", "ofrep")
    store.close()
    with serve_asgi(assemble(kafka_settings)) as base:
        provider = OFREPProvider(base, headers_factory=lambda: {"Authorization": f"Bearer {token}"})

        def layout(user: str) -> tuple[str, str | None]:
            try:
                details = provider.resolve_string_details("layout", "v0", EvaluationContext(user))
            except FlagNotFoundError:  # the gateway has not read the applied file yet
                return "", None
            return details.value, details.variant

        wait_for(lambda: layout("u-1") == ("v2", "wide"), 20, "the gateway to read the flags")
        assert provider.resolve_boolean_details("new-checkout", False).value is True
        # the split agrees with the SDK's evaluation of the same users
        assert [layout(f"u{i}")[1] for i in range(40)] == [_variant(f"u{i}") for i in range(40)]


def _variant(user: str) -> str:
    from shiftright.flags.evaluate import Snapshot, compile_snapshot
    from shiftright_server.schemas.flag_file import load_flags

    flags = [f.model_dump(mode="json") for f in load_flags(GOOD).flags]
    compiled = compile_snapshot(Snapshot(app="checkout", flags=flags), "prod")
    return compiled["layout"].evaluate(user, "", {})[1]


def test_the_http_api_flips_on_the_real_topic_as_the_tokens_owner(
    kafka_settings: Settings,
) -> None:
    from fastapi.testclient import TestClient
    from shiftright_server.infra.access.identity import open_identity
    from shiftright_server.infra.api.flags import flags_app

    identity = open_identity(kafka_settings)
    ann, _ = identity.accounts.add("ann@example.com", "editor")
    token, _ = identity.tokens.create(ann, "write")
    identity.close()
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(flags_app(kafka_settings)) as client:
        assert client.put("/files/checkout", content=GOOD, headers=auth).status_code == 200
        where = "/flags/checkout/new-checkout/environments/prod"
        flipped = client.post(f"{where}/flip", json={"to": "off", "reason": "5xx"}, headers=auth)
        assert flipped.status_code == 200, flipped.text
    out = cli(kafka_settings, "flags", "list", "--app", "checkout")  # another reader
    assert "prod→off by ann@example.com" in out.output
    changes = _changes(kafka_settings, 3)  # applying: two flags on in prod; then the flip
    flip = changes[-1]
    assert (flip["name"], flip["value"], flip["actor"], flip["description"]) == (
        "new-checkout",
        "off",
        "ann@example.com",
        "5xx",
    )


def test_a_flip_reaches_a_waiting_follower_when_it_is_written(kafka_bootstrap: str) -> None:
    """The follower's fetch waits up to FETCH_WAIT_MS on an idle topic, and the broker
    answers it as soon as a record arrives, and the reader takes a record as soon as it
    is fetched: each flip reaches it within the 50 ms Flags promises (the median; one
    flip of a loaded machine may take longer), well within that wait."""
    import statistics
    import threading
    import uuid

    from confluent_kafka import Producer
    from shiftright.flags.feed import FETCH_WAIT_MS, Follower
    from shiftright.flags.topic import Folder, flip_key
    from shiftright_server.infra.kafka.topics import ensure_topics

    topic = f"t-flags-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {topic: 1}, {"cleanup.policy": "compact"})
    changed = threading.Event()
    follower = Follower(kafka_bootstrap, topic, Folder("checkout"), changed.set).start()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
    delays = []
    try:
        producer.produce(topic, b"{}", flip_key("checkout", "new-checkout", "prod"))
        producer.flush(10)
        assert follower.loaded.wait(20), "the follower never read the topic to its end"
        for i in range(8):
            changed.clear()
            # the follower idle in a waiting fetch, reporting no change while none is written
            assert not changed.wait(0.3 + 0.11 * i), f"a change before flip {i} was written"
            value = json.dumps({"to": "off" if i % 2 else "on", "by": "t"}).encode()
            producer.produce(topic, value, flip_key("checkout", "new-checkout", "prod"))
            producer.flush(10)  # the broker has it
            written = time.monotonic()
            assert changed.wait(5), f"flip {i} never reached the follower"
            delays.append(time.monotonic() - written)
    finally:
        follower.stop()
    print(f"flip delays (ms): {[round(d * 1000) for d in delays]}")
    assert max(delays) < FETCH_WAIT_MS / 1000 / 2, delays
    assert statistics.median(delays) < 0.05, delays
