"""A grouped error is built from values already validated, without validating them
again: it must be the record the validating constructor makes, to the byte it is sent as."""

from __future__ import annotations

from shiftright_server.schemas.events import ErrorEvent, HealthEvent
from shiftright_server.schemas.records import GroupedError
from shiftright_server.streams.grouping import Grouper
from shiftright_server.streams.grouping.enrich import (
    _ALL,
    _FROM_ASSIGNMENT,
    _FROM_EVENT,
    GroupedLines,
    grouped_error,
)
from shiftright_server.streams.grouping.stages import AttachStage

from tests.unit.test_grouping_stages import records


def test_grouped_errors_equal_the_validated_records_with_and_without_health() -> None:
    stage, grouped = AttachStage(Grouper()), []
    for topic, offset, event in records():
        if isinstance(event, HealthEvent):
            grouped += stage.health(0, topic, offset, event)
            continue
        assert isinstance(event, ErrorEvent)
        now, ready = stage.assigned(0, topic, offset, event)
        grouped += [now, *ready] if now else ready
    with_health = [g for g in grouped if g.health]
    assert len(grouped) > 600 and 300 < len(with_health) < len(grouped)
    assert any(g.health_after_error for g in grouped)
    for g in grouped:
        validated = GroupedError(**dict(g))
        assert g == validated
        assert g.model_dump_json() == validated.model_dump_json()
        assert all(type(v) is float for v in g.health.values())


def test_each_grouped_error_is_sent_as_its_own_serialisation() -> None:
    """The line sent with health reuses the head of the line sent at once: the same bytes
    as serialising the record whole, for every error the attach stage releases."""
    stage, lines, sent, released = AttachStage(Grouper()), GroupedLines(), 0, 0
    for topic, offset, event in records():
        if isinstance(event, HealthEvent):
            ready = stage.health(0, topic, offset, event)
        else:
            assert isinstance(event, ErrorEvent)
            now, ready = stage.assigned(0, topic, offset, event)
            if now is not None:
                assert lines.at_once(now) == now.model_dump_json().encode()
        for g in ready:
            released += 1
            sent += lines._heads.get((0, g.source_offset, g.source_index)) is not None
            assert lines.with_health(g) == g.model_dump_json().encode()
    assert released > 300 and sent == released  # every one from its head


def test_a_grouped_error_holds_every_field_in_the_records_order_from_its_sources() -> None:
    """The fields written out one by one: the event's as they are, the assignment's by
    the names :data:`~streams.grouping.enrich._FROM_ASSIGNMENT` maps, then the position."""
    grouper = Grouper()
    for _, offset, event in records():
        if not isinstance(event, ErrorEvent):
            continue
        a = grouper.assign(event)
        g = grouped_error(event, a, None, None, (3, offset, 1))
        assert tuple(g.__dict__) == tuple(GroupedError.model_fields) == _ALL
        assert all(g.__dict__[f] is event.__dict__[f] for f in _FROM_EVENT)
        assert all(g.__dict__[f] is getattr(a, n) for f, n in _FROM_ASSIGNMENT.items())
        assert (g.source_partition, g.source_offset, g.source_index) == (3, offset, 1)
