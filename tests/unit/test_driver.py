"""The driver's failure policy on a fake app and a fake step: a record that makes the
step raise is dead-lettered once, every other record's output is delivered once, and
the saved state ends past every record; a send that fails is retried, not acked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from shiftright_server.schemas import topics
from shiftright_server.streams.driver import STEP_FAILED, Driver
from shiftright_server.streams.step import (
    Holes,
    Message,
    Output,
    Record,
    Spans,
    StateKey,
    StateWrite,
    TopicPartition,
)


class FakeProducer:
    def __init__(self, sent: list[tuple[str, Any]], fail: list[int]) -> None:
        self.sent, self.fail = sent, fail

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> asyncio.Future[None]:
        if self.fail[0] > 0:  # the broker is away for this many sends
            self.fail[0] -= 1
            raise ConnectionError("broker away")
        self.sent.append((topic, {"key": key, "value": value, "headers": headers}))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class FakeApp:
    def __init__(self, fail_sends: int = 0) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.producer = FakeProducer(self.sent, [fail_sends])

    async def maybe_start_producer(self) -> FakeProducer:
        return self.producer


class FakeChangelog:
    def get_topic_name(self) -> str:
        return "changelog"


class FakeTable:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = FakeChangelog()


class DoublingStep:
    """Emits each record's value twice; raises on b"bad"; state: the last offset."""

    name = "fake"

    def __init__(self, table: FakeTable) -> None:
        self.table = table
        self.last: dict[TopicPartition, int] = {}
        self.holes = Holes()

    def _applied(self, tp: TopicPartition) -> int:
        if tp not in self.last:
            saved = self.table.data.get(f"{tp[0]}:{tp[1]}".encode())
            self.last[tp] = int(saved) if saved else -1
        return self.last[tp]

    def missing(self, positions: Iterable[tuple[str, int, int]]) -> Spans:
        return self.holes.spans(positions, self._applied)

    def process(self, records: Sequence[Record]) -> Output:
        out = Output()
        for r in records:
            tp = (r.topic, r.partition)
            if r.offset <= self._applied(tp):
                continue
            if r.value == b"bad":
                raise ValueError(f"cannot double offset {r.offset}")
            self.last[tp] = r.offset
            out.messages.append(Message("doubled", b"k", (r.value or b"") * 2))
            out.touched.add(tp)
        return out

    def skip(self, record: Record) -> StateKey:
        tp = (record.topic, record.partition)
        self.last[tp] = max(self._applied(tp), record.offset)
        return tp

    def state_writes(self, touched: set[StateKey]) -> list[list[StateWrite]]:
        keys: list[TopicPartition] = sorted(touched)  # type: ignore[arg-type]  # tp keys
        return [
            [StateWrite(f"{t}:{p}".encode(), str(self.last[(t, p)]).encode(), p) for t, p in keys]
        ]

    def restore(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._applied(tp)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.last.pop(tp, None)


def run(records: list[Record], fail_sends: int = 0) -> tuple[FakeApp, FakeTable, Driver]:
    app = FakeApp(fail_sends)
    table = FakeTable()
    step = DoublingStep(table)
    driver = Driver(app, step, ["in"], table, "dlq", "unused:9092", (100, 0.1))  # type: ignore[arg-type]  # fake app
    asyncio.run(driver.run(records))
    return app, table, driver


def records(values: list[bytes]) -> list[Record]:
    return [Record("in", i % 2, i // 2, v, 0) for i, v in enumerate(values)]


def test_a_poison_record_is_dead_lettered_and_every_other_record_is_processed_once() -> None:
    values = [f"v{i}".encode() for i in range(20)]
    values[13] = b"bad"
    app, table, driver = run(records(values))
    doubled = sorted(m["value"] for t, m in app.sent if t == "doubled")
    assert doubled == sorted(v * 2 for v in values if v != b"bad")
    letters = [m for t, m in app.sent if t == "dlq"]
    assert len(letters) == 1
    headers = dict(letters[0]["headers"])
    assert headers[topics.HEADER_REASON] == STEP_FAILED.encode()
    assert headers[topics.HEADER_DETAIL].startswith(b"fake: ValueError('cannot double offset 6')")
    assert (headers[topics.HEADER_SOURCE_PARTITION], headers[topics.HEADER_SOURCE_OFFSET]) == (
        b"1",
        b"6",
    )
    assert table.data == {b"in:0": b"9", b"in:1": b"9"}, "saved past every record"
    assert driver.counters.step_failed == 1 and driver.counters.records == 20


def test_a_batch_without_poison_is_processed_in_one_go() -> None:
    app, table, driver = run(records([b"a", b"b", b"c"]))
    assert [m["value"] for t, m in app.sent if t == "doubled"] == [b"aa", b"bb", b"cc"]
    assert [t for t, _ in app.sent].count("changelog") == 2  # one state write per partition


def test_a_failed_send_retries_the_batch_and_delivers_each_output_at_least_once() -> None:
    app, table, driver = run(records([b"a", b"b"]), fail_sends=1)
    assert driver.counters.retries == 1
    assert sorted({m["value"] for t, m in app.sent if t == "doubled"}) == [b"aa", b"bb"]
    assert table.data == {b"in:0": b"0", b"in:1": b"0"}
