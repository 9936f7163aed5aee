"""Where the overview's request series read quarter hours (migration 0017) and where
minutes: whole quarter hours inside the range, only when the buckets are made of them."""

from __future__ import annotations

from datetime import UTC, datetime

from shiftright_server.dashboard.overview import params, quarters
from shiftright_server.dashboard.scopes import Scope
from shiftright_server.dashboard.timerange import TimeRange, parse_range

NOW = datetime(2026, 12, 4, 21, 37, 42, tzinfo=UTC)
ODD = TimeRange(
    datetime(2026, 12, 4, 10, 17, tzinfo=UTC), datetime(2026, 12, 4, 14, 43, tzinfo=UTC), ""
)


def test_a_day_in_quarter_hour_buckets_reads_quarter_hours_only() -> None:
    day = parse_range("24h", None, None, NOW)
    assert day.step_s == 900
    found = params(day, Scope("", ""))
    assert (found["quarters_start"], found["quarters_end"]) == (found["start"], found["end"])
    assert found["hours_start"] == found["hours_end"]  # 15-minute buckets: no hours


def test_the_minutes_at_either_end_stay_outside_the_quarter_hours() -> None:
    assert quarters(ODD, 900) == {
        "quarters_start": "2026-12-04 10:30:00",
        "quarters_end": "2026-12-04 14:30:00",
    }
    assert quarters(ODD, 3600) == quarters(ODD, 900)  # hourly buckets: hours inside these


def test_buckets_that_are_not_whole_quarter_hours_read_minutes_only() -> None:
    for step in (60, 300, 600):
        assert quarters(ODD, step) == {
            "quarters_start": "2026-12-04 10:17:00",
            "quarters_end": "2026-12-04 10:17:00",
        }
    short = TimeRange(ODD.start, ODD.start.replace(minute=28), "")
    assert quarters(short, 900)["quarters_start"] == quarters(short, 900)["quarters_end"]
