"""The two stages a worker drives, with a crash and restart in the middle: state restored
from the last saved changelog bytes, Kafka redelivering from before the save, and the
first stage re-emitting grouped errors it had already sent. No group counts anything
twice and the transitions are the same as without the crash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.events import EVENT_ADAPTER, ErrorEvent, HealthEvent
from shiftright_server.schemas.records import ErrorGroupTransition, GroupedError
from shiftright_server.streams.grouping import Grouper
from shiftright_server.streams.grouping.health import Reading
from shiftright_server.streams.grouping.stages import AttachStage, GroupStage

T0 = datetime(2026, 3, 4, 14, tzinfo=UTC)
HEALTH, ERRORS = "events.health.v1", "errors.byhost.v1"
Record = tuple[str, int, Any]


def records() -> list[Record]:
    """(topic, offset, event): one interleaving of the two co-partitioned topics."""
    raw = Simulator(seed=4, rate=80).tick(T0, 300)
    offsets = {HEALTH: 0, ERRORS: 0}
    out = []
    for e in (EVENT_ADAPTER.validate_python(r) for r in raw if r["kind"] in ("error", "health")):
        topic = HEALTH if isinstance(e, HealthEvent) else ERRORS
        out.append((topic, offsets[topic], e))
        offsets[topic] += 1
    return out


def attach_all(stage: AttachStage, stream: list[Record]) -> list[GroupedError]:
    out: list[GroupedError] = []
    for topic, offset, event in stream:
        if isinstance(event, HealthEvent):
            out += stage.health(0, topic, offset, event)
        else:
            assert isinstance(event, ErrorEvent)
            out += stage.error(0, topic, offset, event)
    return out


def group_all(stage: GroupStage, grouped: list[GroupedError]) -> list[ErrorGroupTransition]:
    return [t for g in grouped for t in stage.error(0, g)]


def test_a_crash_between_saves_changes_no_group_and_no_transition() -> None:
    stream = records()
    grouped = attach_all(AttachStage(Grouper()), stream)
    clean = GroupStage()
    transitions = group_all(clean, grouped)
    assert len(grouped) > 300 and len({g.event_id for g in grouped}) == len(grouped)

    first, second = AttachStage(Grouper()), GroupStage()
    sent = attach_all(first, stream[:700])
    saved_first = first.dumps(0)
    sent += attach_all(first, stream[700:900])  # sent, but the save after it never happened
    got = group_all(second, sent[:300])
    saved_second = second.dumps(0)
    group_all(second, sent[300:])  # emitted, then lost with the crash: re-emitted below

    restarted_first = AttachStage(Grouper(), load_state=lambda p: saved_first)
    again = attach_all(restarted_first, stream[650:])  # redelivered from before the save
    restarted_second = GroupStage(load_state=lambda p: saved_second)
    got_after = group_all(restarted_second, sent[250:] + again)  # duplicates included
    assert got + got_after == transitions
    rows = {r.group_id: r.count for r in restarted_second.take_rows(0)}
    expected = {r.group_id: r.count for r in clean.take_rows(0)}
    assert rows == expected


def test_a_health_messages_readings_applied_at_once_as_one_by_one() -> None:
    """Health arrives in batch messages: the readings of one applied in one call release
    the same errors, in the same order, as applied one at a time; a message applied in
    part before (a replay after a crash) is applied from where it stopped."""
    messages: list[tuple[str, list[Any]]] = []
    for _, _, event in records():  # runs of health events as messages of up to 5
        health = isinstance(event, HealthEvent)
        if health and messages and messages[-1][0] == "health" and len(messages[-1][1]) < 5:
            messages[-1][1].append(event)
            continue
        messages.append(("health" if isinstance(event, HealthEvent) else "error", [event]))
    one, many = AttachStage(Grouper()), AttachStage(Grouper())
    offsets = {HEALTH: 0, ERRORS: 0}
    released = 0
    for n, (kind, events) in enumerate(messages):
        topic = HEALTH if kind == "health" else ERRORS
        offset = offsets[topic]
        offsets[topic] += 1
        if kind == "error":
            assert one.assigned(0, topic, offset, events[0]) == many.assigned(
                0, topic, offset, events[0]
            )
            continue
        readings = [(i, Reading.of(e)) for i, e in enumerate(events)]
        if n % 7 == 0:  # applied in part before: the first reading alone, on both
            assert one.health(0, topic, offset, readings[0][1]) == many.health(
                0, topic, offset, readings[0][1]
            )
        ready = [g for i, r in readings for g in one.health(0, topic, offset, r, i)]
        assert ready == many.healths(0, topic, offset, readings)
        assert many.healths(0, topic, offset, readings) == []  # applied: a replay adds none
        assert one.take_late() == many.take_late()
        released += len(ready)
    assert released > 100
    assert one.dumps(0) == many.dumps(0)
