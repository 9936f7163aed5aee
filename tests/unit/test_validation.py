"""What the validator accepts and why it rejects the rest."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from shiftright_server.schemas import validation as v
from shiftright_server.schemas.events import ErrorEvent, HealthEvent, UsageEvent

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def usage(**over: object) -> bytes:
    event = {
        "kind": "usage",
        "app": "checkout",
        "env": "prod",
        "name": "cart.add",
        "ts": "2026-11-26T14:59:00.123Z",
        "duration_ms": 12.5,
    }
    event.update(over)
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("raw", "reason", "says"),
    [
        (b"{not json", v.MALFORMED_JSON, "invalid JSON"),
        (None, v.MALFORMED_JSON, "empty"),
        (b"[1, 2]", v.NOT_AN_OBJECT, "JSON object"),
        (b'{"app": "checkout", "env": "prod"}', v.MISSING_KIND, "'kind' is required"),
        (usage(kind="telemetry"), v.UNKNOWN_KIND, "'telemetry'"),
        (usage(duration_ms="fast"), v.SCHEMA_VIOLATION, "duration_ms"),
        (usage(app=None), v.SCHEMA_VIOLATION, "app"),
        (usage(name=""), v.SCHEMA_VIOLATION, "name"),
        (usage(ts="2026-11-26T14:59:00"), v.SCHEMA_VIOLATION, "timezone"),
        (usage(surprise=1), v.SCHEMA_VIOLATION, "surprise"),
        (usage(duration_ms=float("inf")), v.SCHEMA_VIOLATION, "duration_ms"),
        (usage(value=float("nan")), v.SCHEMA_VIOLATION, "value"),
        (usage(value=float("-inf")), v.SCHEMA_VIOLATION, "finite"),
        (usage(ts="2099-01-01T00:00:00Z"), v.TS_IN_FUTURE, "ahead of now"),
        (usage(ts="2020-01-01T00:00:00Z"), v.TS_TOO_OLD, "older than"),
        (usage(attributes={"pad": "x" * 300_000}), v.OVERSIZED, "exceeds the limit"),
    ],
)
def test_bad_input_is_rejected_with_a_reason_naming_the_problem(
    raw: bytes | None, reason: str, says: str
) -> None:
    result = v.parse_event(raw, "usage", NOW)
    assert isinstance(result, v.Rejection)
    assert result.reason == reason
    assert says in result.detail


def test_event_on_the_wrong_topic_is_rejected() -> None:
    result = v.parse_event(usage(), "error", NOW)
    assert result == v.Rejection(v.WRONG_TOPIC, "kind 'usage' on the error topic")


def test_each_kind_validates_and_ts_is_normalised_to_utc_ms() -> None:
    got = v.parse_event(usage(ts="2026-11-26T15:59:00.123456+01:00"), "usage", NOW)
    assert isinstance(got, UsageEvent)
    assert got.ts == datetime(2026, 11, 26, 14, 59, 0, 123000, tzinfo=UTC)
    err = json.dumps(
        {
            "kind": "error",
            "app": "a",
            "env": "prod",
            "exception_type": "KeyError",
            "frames": [{"module": "m", "function": "f", "lineno": 3}],
        }
    ).encode()
    assert isinstance(v.parse_event(err, "error", NOW), ErrorEvent)
    health = json.dumps(
        {
            "kind": "health",
            "app": "a",
            "env": "prod",
            "host": "h1",
            "metrics": {"system.cpu.utilization": 0.5},
        }
    ).encode()
    assert isinstance(v.parse_event(health, None, NOW), HealthEvent)


def test_missing_ts_and_event_id_come_from_the_record_not_the_clock() -> None:
    raw = json.dumps({"kind": "usage", "app": "a", "env": "prod", "name": "x"}).encode()
    given = uuid.uuid4()
    first = v.parse_event(raw, "usage", NOW, event_id=given)
    again = v.parse_event(raw, "usage", NOW, event_id=given)
    assert isinstance(first, UsageEvent)
    assert first == again
    assert (first.ts, first.event_id) == (NOW, given)


def test_a_line_can_be_passed_on_as_is_only_when_it_carries_its_own_ts_and_id() -> None:
    own = usage(event_id=str(uuid.uuid4()))
    event, as_given = v.parse_event_as_given(own, "usage", NOW, event_id=uuid.uuid4())
    assert isinstance(event, UsageEvent) and as_given
    assert UsageEvent.model_validate_json(own) == event  # re-parsing it gives the same event
    for raw in (usage(), usage(event_id=str(uuid.uuid4()), ts=None)):
        without_ts_or_id = json.loads(raw)
        without_ts_or_id = {k: x for k, x in without_ts_or_id.items() if x is not None}
        _, as_given = v.parse_event_as_given(
            json.dumps(without_ts_or_id).encode(), "usage", NOW, event_id=uuid.uuid4()
        )
        assert not as_given  # filled in (ts from the record) or generated (the id)
    rejected, as_given = v.parse_event_as_given(b"{oops", "usage", NOW)
    assert isinstance(rejected, v.Rejection) and not as_given


def test_time_bounds_are_configurable() -> None:
    limits = v.Limits(max_future=timedelta(hours=2))
    ahead = (NOW + timedelta(hours=1)).isoformat()
    assert isinstance(v.parse_event(usage(ts=ahead), "usage", NOW, limits), UsageEvent)
