"""The SDK's disk spill on a real broker: an app whose broker is down is killed -9 with
its events on disk; the next process started with the same spill directory sends them
when the broker is back, each exactly once in the topic."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from shiftright_server.infra.kafka.launcher import KafkaLauncher
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.settings import KafkaSettings, Settings
from shiftright_server.schemas.topics import named

from tests.integration.test_emitter import consume_all

APP = Path(__file__).with_name("spill_app.py")
FIRST, SECOND = 400, 200  # events of the killed process, of its successor


def start_app(
    launcher: KafkaLauncher, settings: Settings, spill: Path, numbers: range
) -> subprocess.Popen[str]:
    args = [
        launcher.bootstrap,
        settings.namespace,
        str(spill),
        str(numbers.start),
        str(numbers.stop),
    ]
    return subprocess.Popen([sys.executable, str(APP), *args], stdout=subprocess.PIPE, text=True)


def said(app: subprocess.Popen[str], what: str) -> dict[str, object]:
    """Read the app's lines up to ``what``; its SDK counters at that moment."""
    assert app.stdout is not None
    for line in app.stdout:
        word, _, stats = line.partition(" ")
        if word == what:
            parsed: dict[str, object] = json.loads(stats)
            return parsed
        if word == "timed":
            pytest.fail(f"the app {line}")
    pytest.fail(f"the app ended (exit {app.wait(10)}) before saying {what!r}")


def messages(settings: Settings, expected: int) -> list[dict[str, object]]:
    """Every event of the usage topic, once it holds ``expected`` (and all it holds)."""
    topic = named("events.usage.v1", settings.namespace)
    got = consume_all(
        settings, "events.usage.v1", expected, lambda m: (m.value() or b"").count(b"\n") + 1
    )
    watermarks = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "w"})
    try:
        partitions = watermarks.list_topics(topic, timeout=10).topics[topic].partitions
        held = sum(
            watermarks.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        watermarks.close()
    assert len(got) == held, f"read {len(got)} of the {held} messages the topic holds"
    return [json.loads(line) for m in got for line in (m.value() or b"").split(b"\n")]


def test_events_spilled_by_a_killed_app_are_sent_once_by_the_next_one(
    restartable_kafka: KafkaLauncher, tmp_path: Path
) -> None:
    launcher = restartable_kafka
    settings = Settings(
        namespace=f"t{uuid.uuid4().hex[:10]}",
        kafka=KafkaSettings(bootstrap=launcher.bootstrap),
        state_dir=tmp_path / "state",
    )
    create_topics(settings)
    spill = tmp_path / "spill"
    apps: list[subprocess.Popen[str]] = []
    try:
        launcher.stop()
        killed = start_app(launcher, settings, spill, range(FIRST))
        apps.append(killed)
        stats = said(killed, "spilled")
        assert stats["dropped"] == {} and stats["delivered"] == 0, stats
        killed.kill()  # -9, with every event on disk and none delivered
        killed.wait(10)

        successor = start_app(launcher, settings, spill, range(FIRST, FIRST + SECOND))
        apps.append(successor)
        said(successor, "spilled")
        launcher.launch()
        stats = said(successor, "delivered")
        assert successor.wait(30) == 0
        assert stats["dropped"] == {} and stats["failed"] == {}, stats
        assert stats["delivered"] == FIRST + SECOND, (
            "the successor delivered both processes' events"
        )
    finally:
        for app in apps:
            if app.poll() is None:
                app.kill()
                app.wait(10)
        if launcher.running_pid() is None:
            launcher.launch()

    events = messages(settings, FIRST + SECOND)
    numbers = Counter(int(e["value"]) for e in events)  # type: ignore[call-overload]  # JSON numbers
    assert sorted(numbers) == list(range(FIRST + SECOND)), "every event arrived"
    assert max(numbers.values()) == 1, f"duplicates: {[n for n, c in numbers.items() if c > 1]}"
    assert len({e["event_id"] for e in events}) == len(events) == FIRST + SECOND
    assert not list(spill.glob("*/*.seg")), "the spill is empty once delivered"
