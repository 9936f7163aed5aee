"""The SDK with the disk spill on, in front of a fake broker that can go away: nothing is
dropped while the spill has room, everything arrives once and in order when the broker
is back, and what one process spilled is sent by the next."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import shiftright
from shiftright.config import Config
from shiftright.transport import PURGED, Delivery

from tests.unit.sdk.conftest import SDK


class FakeBroker:
    """A transport behind which the broker is ``up`` or not. Its buffer holds ``capacity``
    messages (``BufferError`` beyond, like librdkafka); while the broker is away nothing
    is acknowledged; ``purge_queued`` gives back what waits, as librdkafka's purge does."""

    def __init__(self, capacity: int = 1000) -> None:
        self.up = True
        self.capacity = capacity
        self.waiting: list[tuple[bytes, Delivery]] = []
        self.stored: list[bytes] = []  # the topic, as consumers would read it
        self.lock = threading.Lock()

    def factory(self, config: Config) -> FakeBroker:
        return self

    def produce(
        self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Delivery
    ) -> None:
        with self.lock:
            if len(self.waiting) >= self.capacity:
                raise BufferError("queue full")
            self.waiting.append((value, on_delivery))

    def poll(self, timeout: float) -> None:
        with self.lock:
            if not self.up:
                return
            done, self.waiting = self.waiting, []
            self.stored.extend(value for value, _ in done)
        for _, report in done:
            report(None)

    def partitions(self, topic: str) -> int | None:
        return None

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self.waiting)

    def purge_queued(self) -> None:
        with self.lock:
            done, self.waiting = self.waiting, []
        for _, report in done:
            report(PURGED)

    def close(self) -> None:
        pass

    def numbers(self) -> list[int]:
        return [json.loads(line)["value"] for v in self.stored for line in v.split(b"\n")]


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    def init(broker: FakeBroker, **options: Any) -> shiftright.Client:
        defaults: dict[str, Any] = {
            "health_interval": 0,
            "flush_interval": 0.01,
            "spill_dir": str(tmp_path / "spill"),
            "spill_after": 0.2,
            "transport": broker.factory,
            "hooks": False,
            "logging_level": None,
            "rate_limits": {},
        }
        defaults.update(options)
        return shiftright.init(app="checkout", env="test", kafka="fake:9092", **defaults)

    try:
        yield init
    finally:
        shiftright.close(1)


def send(numbers: range) -> None:
    for n in numbers:
        shiftright.track("checkout.submit", value=float(n))
        if n % 50 == 0:  # several batches, as traffic spread over time makes
            shiftright.get_client()._wake.set()  # type: ignore[union-attr]  # initialised


def wait(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {shiftright.stats()}")
        time.sleep(0.01)


def test_a_full_buffer_spills_instead_of_dropping_and_all_arrive_in_order(
    start: Any, tmp_path: Path
) -> None:
    broker = FakeBroker(capacity=2)  # a tiny librdkafka buffer
    start(broker)
    broker.up = False
    send(range(2000))
    wait(lambda: shiftright.stats()["spill"]["events"] > 1500, "events spilled")
    stats = shiftright.stats()
    assert not stats["dropped"] and stats["spill"]["engaged"], stats
    assert list((tmp_path / "spill" / "0").glob("*.seg")), "on disk"

    broker.up = True
    assert shiftright.flush(10) == 0, shiftright.stats()
    assert broker.numbers() == list(range(2000)), "each once, in the order sent"
    stats = shiftright.stats()
    assert stats["delivered"] == 2000 and not stats["dropped"] and not stats["failed"]
    assert stats["spill"]["events"] == 0 and not stats["spill"]["engaged"]
    assert not list((tmp_path / "spill" / "0").glob("*.seg")), "files removed once delivered"


def test_a_broker_silent_for_spill_after_moves_what_waits_to_disk(
    start: Any, broker: FakeBroker
) -> None:
    start(broker)
    broker.up = False
    send(range(300))
    wait(lambda: shiftright.stats()["spill"]["events"] == 300, "all on disk")
    assert len(broker.waiting) <= 256, "only the replay window waits in memory"
    assert shiftright.stats()["in_flight"] == 0

    send(range(300, 400))  # while engaged, new events go to the spill's tail
    wait(lambda: shiftright.stats()["spill"]["events"] == 400, "the newest behind")
    broker.up = True
    assert shiftright.flush(10) == 0
    assert broker.numbers() == list(range(400))
    send(range(400, 410))  # and direct again
    assert shiftright.flush(10) == 0
    assert broker.numbers() == list(range(410))
    assert shiftright.stats()["spill"]["engaged"] is False


def test_what_a_process_spilled_is_sent_first_by_the_next_one(start: Any) -> None:
    away = FakeBroker()
    away.up = False
    start(away)
    send(range(100))
    left = shiftright.close(0.3)  # the broker never answered: purged to disk at close
    assert left == 100
    assert away.stored == []

    back = FakeBroker()
    start(back)
    send(range(100, 120))
    assert shiftright.flush(10) == 0, shiftright.stats()
    assert back.numbers() == list(range(120)), "the old process's events first, each once"


def test_a_full_spill_drops_the_newest_counts_them_and_says_so_once(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broker = FakeBroker(capacity=1)
    start(broker, spill_max_bytes=100_000)
    broker.up = False
    with caplog.at_level(logging.WARNING, logger="shiftright.spill"):
        for chunk in range(0, 3000, 50):  # batch messages of about 50 events
            send(range(chunk, chunk + 50))
            wait(lambda: shiftright.stats()["queued"] == 0, "the chunk handled")
    stats = shiftright.stats()
    assert 0 < stats["dropped"]["spill_full"] < 3000 and stats["spill"]["bytes"] <= 100_000
    assert stats["dropped"]["spill_full"] + stats["spill"]["events"] + stats["in_flight"] == 3000
    assert len([r for r in caplog.records if "spill_full" in r.message]) == 1

    broker.up = True
    assert shiftright.flush(10) == 0
    delivered = broker.numbers()
    assert delivered == list(range(len(delivered))), "the oldest were kept, in order"


def test_a_torn_spill_left_by_a_killed_process_delivers_what_is_readable(
    start: Any, tmp_path: Path
) -> None:
    from shiftright.spill import Record, open_slot

    spill = open_slot(tmp_path / "spill", 1 << 20)
    assert spill is not None
    for n in range(3):
        line = json.dumps({"value": n}).encode()
        spill.append(Record("events.usage.v1", b"k", line, 1, "usage"))
    spill.close()
    [segment] = (tmp_path / "spill" / "0").glob("*.seg")
    with segment.open("ab") as f:
        f.write(b"SRS1\x00\x00")  # a header cut short by kill -9
    broker = FakeBroker()
    start(broker)
    send(range(3, 5))
    assert shiftright.flush(10) == 0, shiftright.stats()
    assert broker.numbers() == [0, 1, 2, 3, 4]
    assert shiftright.stats()["spill"]["torn_records"] == 1


def test_the_spill_is_off_unless_a_directory_is_given(sdk: SDK, tmp_path: Path) -> None:
    sdk.init()
    shiftright.track("a")
    assert shiftright.flush(5) == 0
    assert "spill" not in shiftright.stats()


def test_the_directory_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, broker: FakeBroker
) -> None:
    monkeypatch.setenv("SHIFTRIGHT_SPILL_DIR", str(tmp_path / "env-spill"))
    monkeypatch.setenv("SHIFTRIGHT_SPILL_MAX_BYTES", "1000000")
    monkeypatch.setenv("SHIFTRIGHT_SPILL_AFTER", "not a number")  # ignored: the default
    client = shiftright.init(app="a", env="e", transport=broker.factory, health_interval=0)
    try:
        assert client.config.spill_dir == str(tmp_path / "env-spill")
        assert client.config.spill_max_bytes == 1_000_000 and client.config.spill_after == 5.0
        wait(lambda: shiftright.stats()["spill"]["open"], "the slot taken")
        assert (tmp_path / "env-spill" / "0" / "lock").exists()
    finally:
        shiftright.close(1)


def test_health_snapshots_show_what_the_spill_holds(start: Any) -> None:
    from shiftright.health import HealthCollector

    broker = FakeBroker()
    client = start(broker)
    broker.up = False
    send(range(50))
    wait(lambda: shiftright.stats()["spill"]["events"] == 50, "spilled")
    assert HealthCollector(client).snapshot()["shiftright.sdk.spill.events"] == 50.0


def test_a_forked_child_takes_a_slot_of_its_own_and_the_parent_keeps_its_own(
    start: Any, tmp_path: Path
) -> None:
    from shiftright.spill import open_slot

    start(FakeBroker())
    wait(lambda: shiftright.stats()["spill"]["open"], "the parent's slot")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its slot, then leave without running pytest's exit
        try:
            os.close(read)
            deadline = time.monotonic() + 5
            while not shiftright.stats()["spill"]["open"] and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(write, shiftright.stats()["spill"]["directory"].encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_dir = pipe.read()
    os.waitpid(pid, 0)
    assert child_dir == str(tmp_path / "spill" / "1")
    assert shiftright.stats()["spill"]["directory"] == str(tmp_path / "spill" / "0")
    free = open_slot(
        tmp_path / "spill", 1 << 20
    )  # the child's slot is free again, the parent's not
    assert free is not None and free.directory == tmp_path / "spill" / "1"
    free.close()


def spill_numbers(slot: Path, numbers: range) -> None:
    """A slot as a process that died left it."""
    from shiftright.spill import Record, take

    slot.mkdir(parents=True)
    spill = take(slot, 1 << 20)
    assert spill is not None
    for n in numbers:
        spill.append(Record("events.usage.v1", b"k", json.dumps({"value": n}).encode(), 1, "usage"))
    spill.close()


def test_slots_left_by_processes_that_are_gone_are_adopted_and_held_ones_are_not(
    start: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shiftright import spiller
    from shiftright.spill import take

    monkeypatch.setattr(spiller, "ADOPT_EVERY", 0.05)
    root = tmp_path / "spill"
    spill_numbers(root / "0", range(0, 10))  # ours at start
    spill_numbers(root / "3", range(10, 20))  # a worker that is not coming back
    spill_numbers(root / "5", range(20, 30))
    held = take(root / "5", 1 << 20)  # a live process's slot
    assert held is not None
    broker = FakeBroker()
    start(broker)
    wait(lambda: sorted(broker.numbers()) == list(range(20)), "slots 0 and 3 delivered")
    assert broker.numbers()[:10] == list(range(10)) and not list((root / "3").glob("*.seg"))
    assert list((root / "5").glob("*.seg")), "a held slot is left alone"

    held.close()  # that process ends: its slot is adopted at the next look
    wait(lambda: sorted(broker.numbers()) == list(range(30)), "slot 5 adopted")
    assert shiftright.flush(5) == 0 and shiftright.stats()["delivered"] == 30
