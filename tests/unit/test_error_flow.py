"""The stream worker's error steps as batch functions: the re-key the rollup processor
does (``streams.rekey``) and the steps of ``streams.error_flow``; records in, messages and
states out; replays, re-key duplicates, gaps and restarts from saved states change no
count."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.schemas.records import GroupedError
from shiftright_server.schemas.validation import Limits
from shiftright_server.streams.error_flow import Attach, Group, Offsets
from shiftright_server.streams.grouping import Grouper
from shiftright_server.streams.grouping.stages import AttachStage, GroupStage
from shiftright_server.streams.packing import pack_messages
from shiftright_server.streams.processor import Processor, Record
from shiftright_server.streams.rekey import Handoff

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
ERR, HEALTH, BYHOST, GROUPED, CMDS = (
    "events.error.v1",
    "events.health.v1",
    "errors.byhost.v1",
    "errors.grouped.v1",
    "errors.commands.v1",
)


def traffic() -> list[dict[str, Any]]:
    return [
        e
        for e in Simulator(seed=9, rate=60, diurnal=False).tick(T0, 240)
        if e["kind"] in ("error", "health")
    ]


def raw_records(events: list[dict[str, Any]], kind: str, topic: str) -> list[Record]:
    chosen = [e for e in events if e["kind"] == kind]
    ms = int((T0 + timedelta(minutes=5)).timestamp() * 1000)
    return [Record(topic, 0, i, json.dumps(e).encode(), ms) for i, e in enumerate(chosen)]


def byhost_records(rekeyed: list[tuple[bytes, bytes, Any]], first: int = 0) -> list[Record]:
    return [Record(BYHOST, 0, first + i, v, 0, h) for i, (_, v, h) in enumerate(rekeyed)]


def rekeyer(load: Any = lambda tp: None) -> Processor:
    """The rollup processor as the worker runs it with error analytics on."""
    return Processor({ERR: "error"}, Limits(), 60, 300, load_state=load, rekey_errors=True)


def attach(load: Any = lambda p: None) -> Attach:
    return Attach(AttachStage(Grouper()), HEALTH, Limits(), load)


def interleave(health: list[Record], errors: list[Record]) -> list[Record]:
    return sorted(health + errors, key=lambda r: (r.topic == BYHOST, r.offset))


def test_rekey_keeps_valid_errors_keyed_by_host_with_their_origin() -> None:
    records = raw_records(traffic(), "error", ERR)
    bad = Record(ERR, 0, len(records), b"{oops", 0)
    out = rekeyer().process([*records, bad])
    assert len(out.byhost) == len(records) and len(out.dead_letters) == 1
    key, value, headers = out.byhost[0]
    event = json.loads(value)
    assert key == f"{event['app']}|{event['env']}|{event['host']}".encode()
    assert headers == [("shiftright-origin", b"0:0:0")]


def test_rekey_passes_a_complete_line_on_as_it_came_and_fills_in_a_missing_ts_and_id() -> None:
    complete = raw_records(traffic(), "error", ERR)[0]
    bare = {
        k: v for k, v in json.loads(complete.value or b"").items() if k not in ("ts", "event_id")
    }
    partial = Record(ERR, 0, 1, json.dumps(bare).encode(), complete.timestamp_ms)
    out = rekeyer().process([complete, partial])
    (_, as_came, _), (_, filled, _) = out.byhost
    assert as_came == complete.value  # no second serialization of the stack trace
    event = json.loads(filled)
    # what the sink gives the raw row: the record's time and a position-derived id
    assert event["ts"].startswith((T0 + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"))
    assert event["event_id"] and event["stacktrace"] == bare["stacktrace"]


def test_a_rekey_replay_sends_duplicates_that_the_attach_step_drops() -> None:
    events = traffic()
    errors = raw_records(events, "error", ERR)
    rekey = rekeyer()
    sent = rekey.process(errors[:50]).byhost
    saved = rekey.state((ERR, 0)).dumps()
    sent += rekey.process(errors[50:80]).byhost  # delivered, then the worker died unsaved
    restarted = rekeyer(lambda tp: saved)
    sent += restarted.process(errors[40:]).byhost  # Kafka redelivers from before the save
    assert len(sent) == len(errors) + 30
    step = attach()
    out = step.process(interleave(raw_records(events, "health", HEALTH), byhost_records(sent)))
    grouped = out.grouped + step.flush(0).grouped
    assert out.replayed == 30
    assert sorted(str(g.event_id) for g in grouped) == sorted(
        json.loads(e.value or b"")["event_id"] for e in errors
    )
    assert sum(g.health_ts is not None for g in grouped) >= 0.95 * len(grouped)


def test_errors_handed_over_by_the_rekey_group_as_the_lines_they_were_sent_as() -> None:
    events = traffic()
    errors = raw_records(events, "error", ERR)
    bare = {k: v for k, v in json.loads(errors[1].value or b"").items() if k != "ts"}
    errors[1] = Record(ERR, 0, 1, json.dumps(bare).encode(), errors[1].timestamp_ms)
    handoff = Handoff[ErrorEvent](limit=len(errors) - 5)
    rekey = Processor({ERR: "error"}, Limits(), 60, 300, rekey_errors=True, handoff=handoff)
    sent = byhost_records(rekey.process(errors).byhost)
    health = raw_records(events, "health", HEALTH)
    handed = Attach(AttachStage(Grouper()), HEALTH, Limits(), handoff=handoff)
    out, alone = (
        handed.process(interleave(health, sent)),
        attach().process(interleave(health, sent)),
    )
    assert out.grouped == alone.grouped and out.assigned == alone.assigned
    # validated again: the line whose ts was filled in (not handed over), and the oldest
    # four of the rest (beyond the limit)
    assert out.handed_over == handoff.limit == len(errors) - 5


def test_a_restarted_attach_step_reemits_in_order_and_groups_count_once() -> None:
    events = traffic()
    byhost = byhost_records(rekeyer().process(raw_records(events, "error", ERR)).byhost)
    stream = interleave(raw_records(events, "health", HEALTH), byhost)
    clean = attach()
    expected = clean.process(stream).grouped + clean.flush(0).grouped

    first = attach()
    sent = first.process(stream[:300]).grouped
    hosts = dict(first.host_states(0))  # saved host by host, then the partition record
    saved = first.dumps(0)
    assert len(hosts) > 1 and b"series" not in zlib.decompress(saved)
    sent += first.process(stream[300:400]).grouped  # lost with the crash
    again = Attach(
        AttachStage(Grouper()), HEALTH, Limits(), lambda p: saved, lambda p: list(hosts.values())
    )
    after = again.process(stream[250:]).grouped + again.flush(0).grouped
    sent += after
    # the restored health cache attaches what an uninterrupted run attached
    health = {g.event_id: (g.health_ts, g.health_age_ms) for g in expected}
    assert after and all(health[g.event_id] == (g.health_ts, g.health_age_ms) for g in after)
    group = Group(GroupStage(), CMDS)
    records = [Record(GROUPED, 0, i, g.model_dump_json().encode(), 0) for i, g in enumerate(sent)]
    out = group.process(records)
    counts = {r.group_id: r.count for r in out.rows}
    want: dict[str, int] = {}
    for g in expected:
        want[g.group_id] = want.get(g.group_id, 0) + 1
    assert counts == want
    assert sum(t.kind == "new" for t in out.transitions) == len(want)


def test_group_state_saved_per_group_restores_and_skips_applied_records() -> None:
    events = traffic()
    byhost = byhost_records(rekeyer().process(raw_records(events, "error", ERR)).byhost)
    step = attach()
    grouped = step.process(byhost).grouped + step.flush(0).grouped
    records = [
        Record(GROUPED, 0, i, g.model_dump_json().encode(), 0) for i, g in enumerate(grouped)
    ]
    group = Group(GroupStage(), CMDS)
    out = group.process(records[:60])
    table = {f"group:0:{gid}": group.group_state(0, gid) for gid in out.changed_groups[0]}
    partition_state = group.dumps(0)

    restored = Group(
        GroupStage(),
        CMDS,
        lambda p: partition_state,
        lambda p: [v for k, v in table.items() if k.startswith(f"group:{p}:")],
    )
    again = restored.process(records)  # the first 60 are replays
    assert again.replayed == 60
    total = {r.group_id: r.count for r in out.rows} | {r.group_id: r.count for r in again.rows}
    assert sum(total.values()) == len(grouped)
    assert not any(
        t.kind == "new" for t in again.transitions if t.group_id in out.changed_groups[0]
    )


def test_offsets_name_the_records_a_restored_state_lacks_once() -> None:
    offsets = Offsets()
    offsets.applied((GROUPED, 0), 9)
    batch = [
        Record(GROUPED, 0, 15, b"", 0),
        Record(GROUPED, 0, 16, b"", 0),
        Record(GROUPED, 3, 4, b"", 0),
    ]
    assert offsets.missing(batch) == {(GROUPED, 0): (10, 15), (GROUPED, 3): (0, 4)}
    assert offsets.missing(batch) == {}  # asked once
    assert offsets.missing_before([(GROUPED, 0, 10)]) == {}


def test_grouped_errors_keep_their_source_position_in_the_byhost_partition() -> None:
    events = traffic()
    byhost = byhost_records(rekeyer().process(raw_records(events, "error", ERR)).byhost)
    step = attach()
    grouped: list[GroupedError] = step.process(byhost).grouped + step.flush(0).grouped
    assert [g.source_offset for g in grouped] == [r.offset for r in byhost]


def test_batched_messages_group_like_single_ones_and_replays_still_drop() -> None:
    events = traffic()
    errors = raw_records(events, "error", ERR)
    first, replay = rekeyer().process(errors).byhost, rekeyer().process(errors[100:]).byhost
    packed = pack_messages(first, 8) + pack_messages(replay, 8)
    assert len(packed) < len(first) // 5  # one message per partition and chunk, not per error
    by_partition: dict[int, list[Record]] = {}
    for _, value, headers, p in packed:
        got = by_partition.setdefault(p, [])
        got.append(Record(BYHOST, p, len(got), value, 0, headers))
    step, grouped = attach(), []
    for p, records in by_partition.items():
        out = step.process(records)
        grouped += out.grouped + step.flush(p).grouped
    assert sorted(str(g.event_id) for g in grouped) == sorted(
        json.loads(e.value or b"")["event_id"] for e in errors
    )
    singles = [(b"k", g.model_dump_json().encode(), None) for g in grouped]
    lines = pack_messages(singles, 8)
    group = Group(GroupStage(), CMDS)
    out = group.process([Record(GROUPED, p, i, v, 0, h) for i, (_, v, h, p) in enumerate(lines)])
    assert sum(r.count for r in out.rows) == len(errors)


def test_a_new_group_is_announced_before_its_hosts_health_and_never_again() -> None:
    events = traffic()
    errors = byhost_records(rekeyer().process(raw_records(events, "error", ERR)).byhost)
    health = raw_records(events, "health", HEALTH)
    step, group = attach(), Group(GroupStage(), CMDS)
    first = step.process(errors[:1])  # the host's health up to the error is not in yet
    assert first.grouped == [] and len(first.assigned) == 1
    assert first.assigned[0].health == {} and first.assigned[0].health_ts is None
    announced = group.process(assigned_records(first.assigned))
    assert [t.kind for t in announced.transitions] == ["new"]

    later = step.process(health + errors[1:])  # health arrives: the stored rows get it
    stored = first.grouped + later.grouped + step.flush(0).grouped
    assert len(stored) == len(errors)
    assert sum(g.health_ts is not None for g in stored) >= 0.95 * len(stored)
    assert stored[0].event_id == first.assigned[0].event_id and stored[0].health_ts
    assigned = first.assigned + later.assigned
    assert [g.event_id for g in assigned] == [g.event_id for g in stored]  # each once
    rest = group.process(assigned_records(later.assigned, first=1))
    announced_twice = {t.group_id for t in rest.transitions if t.kind == "new"}
    assert first.assigned[0].group_id not in announced_twice


def test_a_replayed_attach_step_reannounces_nothing() -> None:
    events = traffic()
    byhost = byhost_records(rekeyer().process(raw_records(events, "error", ERR)).byhost)
    stream = interleave(raw_records(events, "health", HEALTH), byhost)
    first = attach()
    sent = first.process(stream[:300]).assigned
    hosts, saved = dict(first.host_states(0)), first.dumps(0)
    sent += first.process(stream[300:400]).assigned  # sent, then the worker died unsaved
    again = Attach(
        AttachStage(Grouper()), HEALTH, Limits(), lambda p: saved, lambda p: list(hosts.values())
    )
    sent += again.process(stream[250:]).assigned
    out = Group(GroupStage(), CMDS).process(assigned_records(sent))
    assert sum(r.count for r in out.rows) == len(byhost)  # every error counted once
    news = [t.group_id for t in out.transitions if t.kind == "new"]
    assert len(news) == len(set(news)) == len({r.group_id for r in out.rows})


def assigned_records(assigned: list[GroupedError], first: int = 0) -> list[Record]:
    return [
        Record("errors.assigned.v1", 0, first + i, g.model_dump_json().encode(), 0)
        for i, g in enumerate(assigned)
    ]


def test_errors_held_in_a_state_saved_before_they_were_sent_at_once_are_counted() -> None:
    from shiftright_server.streams.error_flow import pack_state, unpack_state

    events = traffic()
    byhost = byhost_records(rekeyer().process(raw_records(events, "error", ERR)).byhost)
    first = attach()
    counted = first.process(byhost[:50]).grouped  # the group step read these then
    hosts, state = dict(first.host_states(0)), unpack_state(first.dumps(0))
    assert state["join"]["held"], "nothing held at the save; proves nothing"
    del state["join"]["unannounced"]  # as saved when errors were sent only once released
    again = Attach(
        AttachStage(Grouper()),
        HEALTH,
        Limits(),
        lambda p: pack_state(state),
        lambda p: list(hosts.values()),
    )
    out = again.process(raw_records(events, "health", HEALTH) + byhost[50:])
    assigned = out.assigned + again.flush(0).assigned
    records = [*grouped_records(counted), *assigned_records(assigned, first=len(counted))]
    result = Group(GroupStage(), CMDS).process(records)
    assert sum(r.count for r in result.rows) == len(byhost)  # the held ones too, once
    news = [t.group_id for t in result.transitions if t.kind == "new"]
    assert len(news) == len(set(news))


def grouped_records(grouped: list[GroupedError]) -> list[Record]:
    return [Record(GROUPED, 0, i, g.model_dump_json().encode(), 0) for i, g in enumerate(grouped)]


def test_grouped_errors_handed_over_by_the_attach_step_count_as_the_lines_they_were_sent_as() -> (
    None
):
    events = traffic()
    byhost = byhost_records(rekeyer().process(raw_records(events, "error", ERR)).byhost)
    step = attach()
    assigned = step.process(byhost).assigned + step.flush(0).assigned
    handoff = Handoff[GroupedError](limit=len(assigned) - 3)
    for g in assigned:
        handoff.put(g.model_dump_json().encode(), g)
    records = assigned_records(assigned)
    handed = Group(GroupStage(), CMDS, handoff=handoff).process(records)
    alone = Group(GroupStage(), CMDS).process(records)
    assert handed.transitions == alone.transitions and handed.rows == alone.rows
    assert sum(r.count for r in handed.rows) == len(byhost)
    assert handed.handed_over == handoff.limit  # the oldest three validated again
