"""The time range a URL asks for: presets, custom spans, and what is refused and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shiftright_server.dashboard.timerange import (
    BadRange,
    TimeRange,
    grid,
    hourly_step,
    levels,
    parse_range,
    sketch_filled,
    sketch_levels,
    spans,
)

NOW = datetime(2026, 12, 4, 21, 37, 42, tzinfo=UTC)


def test_a_preset_ends_after_the_current_minute_and_spans_its_length() -> None:
    rng = parse_range("1h", None, None, NOW)
    assert rng.end == datetime(2026, 12, 4, 21, 38, tzinfo=UTC)
    assert rng.start == datetime(2026, 12, 4, 20, 38, tzinfo=UTC)
    assert rng.step_s == 60
    assert rng.query() == {"range": "1h"}


def test_no_range_means_the_last_hour() -> None:
    assert parse_range(None, None, None, NOW).preset == "1h"


def test_long_ranges_get_coarser_buckets_so_charts_stay_readable() -> None:
    for preset in ("15m", "1h", "6h", "24h", "7d", "30d"):
        rng = parse_range(preset, None, None, NOW)
        assert len(grid(rng)) <= 121, preset
    assert parse_range("30d", None, None, NOW).step_s == 21600


def test_a_custom_range_is_aligned_to_minutes_and_kept_in_links() -> None:
    rng = parse_range(None, "2026-12-04T10:15:30Z", "2026-12-04T12:00", NOW)
    assert (rng.start, rng.end) == (
        datetime(2026, 12, 4, 10, 15, tzinfo=UTC),
        datetime(2026, 12, 4, 12, 0, tzinfo=UTC),
    )
    assert rng.query() == {"from": "2026-12-04T10:15Z", "to": "2026-12-04T12:00Z"}


@pytest.mark.parametrize(
    ("preset", "start", "end", "says"),
    [
        ("2w", None, None, "range='2w' is not one of 15m, 1h, 6h, 24h, 7d, 30d"),
        (None, "yesterday", None, "from='yesterday' is not an ISO 8601 time"),
        (None, None, "2026-12-04T10:00Z", "from= is missing"),
        (None, "2026-12-04T12:00Z", "2026-12-04T10:00Z", "must come after"),
        ("1h", "2026-12-04T10:00Z", None, "either range= or from=/to="),
        (None, "2020-01-01T00:00Z", "2026-01-01T00:00Z", "at most 400 days"),
    ],
)
def test_a_malformed_range_says_what_was_wrong(
    preset: str | None, start: str | None, end: str | None, says: str
) -> None:
    with pytest.raises(BadRange, match=says.replace("(", r"\(")):
        parse_range(preset, start, end, NOW)


def test_a_day_or_more_is_widened_to_whole_hours_and_reaches_past_now() -> None:
    day = parse_range("24h", None, None, NOW)  # asked: 21:38 yesterday … 21:38 today
    assert (day.start, day.end) == (
        datetime(2026, 12, 3, 21, tzinfo=UTC),
        datetime(2026, 12, 4, 22, tzinfo=UTC),  # the hour holding now, as far as it goes
    )
    assert day.label() == "2026-12-03T21:00Z – 2026-12-04T22:00Z UTC"  # what the page shows
    assert day.query() == {"range": "24h"} and day.step_s == 900
    assert hourly_step(day) == 3600 and len(grid(day, 3600)) == 25  # the lists' trends
    # charts stop at the current minute and rates divide by the time that has passed
    assert datetime.fromtimestamp(grid(day)[-1], UTC) == datetime(2026, 12, 4, 21, 30, tzinfo=UTC)
    assert day.elapsed_seconds == (24 * 60 + 38) * 60
    assert hourly_step(parse_range("6h", None, None, NOW)) == 300
    week = parse_range(None, "2026-11-27T21:38Z", "2026-12-04T09:05Z", NOW)
    assert (week.start, week.end) == (
        datetime(2026, 11, 27, 21, tzinfo=UTC),
        datetime(2026, 12, 4, 10, tzinfo=UTC),
    )
    again = parse_range(None, week.query()["from"], week.query()["to"], NOW)
    assert again == week  # its link gives the same range
    assert week.elapsed_seconds == week.seconds  # it lies wholly in the past
    short = parse_range(None, "2026-12-03T21:38Z", "2026-12-04T21:37Z", NOW)  # under a day
    assert (short.start.minute, short.end.minute) == (38, 37)


def test_the_whole_hours_inside_a_range_come_from_the_hourly_rollups() -> None:
    day = parse_range(None, "2026-12-04T10:17Z", "2026-12-04T14:43Z", NOW)
    assert spans(day) == {"hours_start": "2026-12-04 11:00:00", "hours_end": "2026-12-04 14:00:00"}
    week = parse_range("7d", None, None, NOW)
    assert week.step_s % 3600 == 0
    assert spans(week, week.step_s) == {
        "hours_start": "2026-11-27 21:00:00",
        "hours_end": "2026-12-04 22:00:00",
    }


def test_minutes_only_for_short_ranges_and_for_buckets_of_less_than_an_hour() -> None:
    minutes_only = {"hours_start": "2026-12-04 21:23:00", "hours_end": "2026-12-04 21:23:00"}
    assert spans(parse_range("15m", None, None, NOW)) == minutes_only
    day = parse_range("24h", None, None, NOW)
    assert day.step_s == 900
    assert spans(day, day.step_s)["hours_start"] == spans(day, day.step_s)["hours_end"]
    aligned = parse_range(None, "2026-12-04T10:00Z", "2026-12-04T12:00Z", NOW)
    assert spans(aligned) == {
        "hours_start": "2026-12-04 10:00:00",
        "hours_end": "2026-12-04 12:00:00",
    }


def test_lists_read_whole_days_then_quarter_days_then_hours_then_minutes() -> None:
    week = parse_range("7d", None, None, NOW)  # 21:00 … 22:00, whole hours: no minutes
    assert levels(week) == {
        "hours_start": "2026-11-27 21:00:00",
        "hours_end": "2026-12-04 22:00:00",
        "quarter_days_start": "2026-11-28 00:00:00",
        "quarter_days_end": "2026-12-04 18:00:00",
        "days_start": "2026-11-28 00:00:00",
        "days_end": "2026-12-04 00:00:00",
    }
    day = levels(parse_range(None, "2026-12-03T21:38Z", "2026-12-04T21:37Z", NOW))
    assert (day["hours_start"], day["hours_end"]) == ("2026-12-03 22:00:00", "2026-12-04 21:00:00")
    assert (day["quarter_days_start"], day["quarter_days_end"]) == (
        "2026-12-04 00:00:00",
        "2026-12-04 18:00:00",
    )
    assert day["days_start"] == day["days_end"] == day["quarter_days_end"]  # no whole day
    minutes = levels(parse_range("15m", None, None, NOW))
    assert len(set(minutes.values())) == 1
    aligned = levels(parse_range(None, "2026-12-02T00:00Z", "2026-12-04T00:00Z", NOW))
    assert aligned["days_start"] == aligned["hours_start"] == "2026-12-02 00:00:00"
    assert aligned["days_end"] == aligned["hours_end"] == "2026-12-04 00:00:00"


SKETCH_SIZES = (3600, 7200, 21600, 43200, 86400, 172800)


def _pieces(at: dict[str, str]) -> list[tuple[int, datetime, datetime]]:
    """Each sketch level's pieces (size, start, end): its whole blocks outside the next
    coarser level's."""

    def t(name: str) -> datetime:
        return datetime.fromisoformat(at[name]).replace(tzinfo=UTC)

    found = []
    for size, coarser in zip(SKETCH_SIZES, SKETCH_SIZES[1:] + (0,), strict=True):
        first, last = t(f"span{size}_start"), t(f"span{size}_end")
        if coarser:
            found += [
                (size, first, t(f"span{coarser}_start")),
                (size, t(f"span{coarser}_end"), last),
            ]
        else:
            found.append((size, first, last))
    return [(size, a, b) for size, a, b in found if a < b]


def _states(at: dict[str, str]) -> int:
    return sum(int((b - a).total_seconds()) // size for size, a, b in _pieces(at))


def test_feature_sketches_read_two_days_then_days_half_days_quarter_days_two_hours_hours() -> None:
    week = parse_range("7d", None, None, NOW)  # 2026-11-27 21:00 … 2026-12-04 22:00
    at = sketch_levels(week)
    assert (at["span3600_start"], at["span3600_end"]) == (
        "2026-11-27 21:00:00",
        "2026-12-04 22:00:00",
    )
    assert (at["span172800_start"], at["span172800_end"]) == (
        "2026-11-29 00:00:00",  # two-day blocks start on even days since the epoch
        "2026-12-03 00:00:00",
    )
    # 21:00 (an hour); 22:00, 4 December 18:00 and 20:00 (two hours each); 28 November and
    # 3 December (a day each) around two blocks of two days; 4 December 00:00 (a half day)
    # and 12:00 (a quarter day): 10 states per feature, where hours, quarter days and
    # days alone take 16
    assert _states(at) == 1 + 3 + 2 + 2 + 1 + 1
    assert sketch_filled(week) == (3600, 7200, 21600, 43200, 86400, 172800)
    day = parse_range("24h", None, None, NOW)  # 21:00 … 22:00 the next day, 25 hours
    assert _states(sketch_levels(day)) <= 6
    assert sketch_filled(parse_range("15m", None, None, NOW)) == (60,)


def test_the_sketch_levels_cover_every_hour_of_a_range_once_in_aligned_blocks() -> None:
    for hours in (1, 5, 25, 49, 169, 24 * 30 + 1):
        for first in range(0, 48 * 7, 5):
            start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=first)
            pieces = _pieces(sketch_levels(TimeRange(start, start + timedelta(hours=hours), "")))
            covered = sorted((a, b) for _, a, b in pieces)
            assert covered[0][0] == start and covered[-1][1] == start + timedelta(hours=hours)
            assert all(b == c for (_, b), (c, _) in zip(covered, covered[1:], strict=False))
            assert all(a.timestamp() % size == b.timestamp() % size == 0 for size, a, b in pieces)
            if hours >= 24:
                assert (
                    _states(sketch_levels(TimeRange(start, start + timedelta(hours=hours), "")))
                    <= 12 + hours // 48
                )
