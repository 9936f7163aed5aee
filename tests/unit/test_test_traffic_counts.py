"""Traffic marked as a test (origin=test) is kept out of the QA usage views only: the
stream worker rolls its errors up and groups them like anyone's, so a client that fakes
a test mark cannot hide an error spike or a new error group (docs/qa.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shiftright_server.schemas.events import EVENT_ADAPTER, ErrorEvent
from shiftright_server.streams.grouping.chain import reported
from shiftright_server.streams.grouping.fingerprint import fingerprint_of
from shiftright_server.streams.rollup import PartitionRollup

from tests.builders import event

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
MARKS = {"user_agent.synthetic.type": "test", "test.case.name": "t::x"}


def _error(second: int, origin: str) -> ErrorEvent:
    marks = MARKS if origin == "test" else {}
    at = T0 + timedelta(seconds=second)
    parsed = EVENT_ADAPTER.validate_python(event("error", at, origin=origin, attributes=marks))
    assert isinstance(parsed, ErrorEvent)
    return parsed


def test_marked_errors_count_in_the_error_rollups() -> None:
    state = PartitionRollup("error", 0, bucket_ms=60_000, lateness_ms=0)
    for offset, (second, origin) in enumerate([(1, "user"), (2, "test"), (3, "test")]):
        state.apply(offset, _error(second, origin))
    state.apply(3, _error(61, "user"))
    (closed,) = state.close(state.watermark_ms(), T0 + timedelta(hours=1))
    assert (closed.key, closed.count) == ("KeyError", 3)


def test_marked_errors_join_the_same_error_group() -> None:
    assert fingerprint_of(reported(_error(1, "test"))) == fingerprint_of(
        reported(_error(1, "user"))
    )
