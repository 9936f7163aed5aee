"""The time range of a page: a preset (``range=15m`` … ``30d``) or a custom span
(``from`` / ``to``, ISO 8601), aligned to whole minutes because the panels read
per-minute views, and a range of a day or more to whole hours (its start down, its end
up, as charting tools align a range to its step): its panels then read hourly and coarser
rollups only, and the hour that holds now is read as far as it goes, so the range stays
live. The page shows the range it used; the same URL always gives the same range for the
same moment. Anything else is a :class:`BadRange` (a 400 page says why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PRESETS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT = "1h"
MAX_SPAN = timedelta(days=400)
#: Ranges at least this long are widened to whole hours.
HOURLY_FROM = timedelta(hours=24)
# Bucket sizes of the charts: the first that gives at most ~120 points (121: a range
# widened to whole hours keeps the buckets of the span asked for).
STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_POINTS = 121


class BadRange(ValueError):
    """A range the dashboard cannot show; the message says what was wrong."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime  # inclusive, a whole minute, UTC
    end: datetime  # exclusive, a whole minute, UTC
    preset: str  # "" for a custom range
    #: Where time that has passed ends, when the range reaches past it (a range widened to
    #: the end of the hour that holds now): charts stop there and rates divide by it.
    until: datetime | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def past_end(self) -> datetime:
        """The end of the part of the range that has already happened."""
        return self.until or self.end

    @property
    def elapsed_seconds(self) -> float:
        """Seconds of the range that have already happened (what a rate divides by)."""
        return (self.past_end - self.start).total_seconds()

    @property
    def step_s(self) -> int:
        return next((s for s in STEPS_S if self.seconds / s <= MAX_POINTS), STEPS_S[-1])

    def query(self) -> dict[str, str]:
        """The range as query-string parameters (for links that keep it)."""
        if self.preset:
            return {"range": self.preset}
        return {"from": _iso(self.start), "to": _iso(self.end)}

    def label(self) -> str:
        return f"{_iso(self.start)} – {_iso(self.end)} UTC"


def parse_range(preset: str | None, start: str | None, end: str | None, now: datetime) -> TimeRange:
    """The range a request asks for; the current minute counts as part of ``now``."""
    if start or end:
        if preset:
            raise BadRange("give either range= or from=/to=, not both")
        return _custom(start, end, now)
    name = preset or DEFAULT
    if name not in PRESETS:
        raise BadRange(f"range={name!r} is not one of {', '.join(PRESETS)} (or use from=/to=)")
    stop = _minute(now) + timedelta(minutes=1)
    return _whole_hours(TimeRange(stop - PRESETS[name], stop, name), now)


def _custom(start: str | None, end: str | None, now: datetime) -> TimeRange:
    if not start:
        raise BadRange("from= is missing (an ISO time such as 2026-12-04T21:00Z)")
    begin = _minute(_parse(start, "from"))
    stop = _minute(_parse(end, "to")) if end else _minute(now) + timedelta(minutes=1)
    if stop <= begin:
        raise BadRange(f"to= ({_iso(stop)}) must come after from= ({_iso(begin)})")
    if stop - begin > MAX_SPAN:
        raise BadRange(f"a range may span at most {MAX_SPAN.days} days")
    return _whole_hours(TimeRange(begin, stop, ""), now)


def _whole_hours(rng: TimeRange, now: datetime) -> TimeRange:
    """A range of a day or more from the start of its first hour to the end of its last
    (a range already in whole hours stays as it is); ``until`` marks where the part that
    has happened ends when the widened end lies after the current minute."""
    if rng.end - rng.start < HOURLY_FROM:
        return rng
    start = rng.start - timedelta(seconds=rng.start.timestamp() % 3600)
    end = rng.end + timedelta(seconds=-rng.end.timestamp() % 3600)
    passed = _minute(now) + timedelta(minutes=1)
    return TimeRange(start, end, rng.preset, passed if start < passed < end else None)


def _parse(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRange(f"{name}={text!r} is not an ISO 8601 time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _minute(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%MZ")


def grid(rng: TimeRange, step_s: int = 0) -> list[int]:
    """Bucket starts as the warehouse makes them (multiples of the step since the epoch),
    in buckets of ``step_s`` seconds or the range's own step."""
    step, start = step_s or rng.step_s, int(rng.start.timestamp())
    first = start - start % step
    return list(range(first, int(rng.past_end.timestamp()), step))


def hourly_step(rng: TimeRange) -> int:
    """The range's step, at least an hour for a range of whole hours (a day or more): the
    small trend charts of the usage lists then read hourly rollups only."""
    whole = rng.seconds >= HOURLY_FROM.total_seconds()
    return max(rng.step_s, 3600) if whole else rng.step_s


def spans(rng: TimeRange, step_s: int = 3600) -> dict[str, str]:
    """Where a query over the rollups reads hours: ``hours_start`` … ``hours_end``, the whole
    hours inside the range, come from the hourly tables and the minutes at either end from
    the minutely ones. A series with buckets that are not whole hours reads minutes only."""
    first = rng.start + timedelta(seconds=-rng.start.timestamp() % 3600)
    last = rng.end - timedelta(seconds=rng.end.timestamp() % 3600)
    if step_s % 3600 or last <= first:
        first = last = rng.start
    return {"hours_start": sql_time(first), "hours_end": sql_time(last)}


def levels(rng: TimeRange) -> dict[str, str]:
    """Where a list over the rollup levels reads what: the whole days inside the range
    (``days_start`` … ``days_end``) from the daily tables, the other whole quarter days
    (six hours, ``quarter_days_start`` … ``quarter_days_end``) from the six-hourly ones,
    the other whole hours (:func:`spans`) from the hourly ones and the minutes at either
    end from the minutely ones. Each level lies inside the one before: without a whole
    block of a level, its start and end are both the end of the level before."""
    return _nested(spans(rng), (("quarter_days", 6 * 3600), ("days", 86400)))


#: The periods of the features' sketch levels (migration 0019), in seconds, finest first:
#: each divides the next, and each block starts at a multiple of its size since the epoch.
SKETCH_SPANS = (3600, 7200, 6 * 3600, 12 * 3600, 86400, 2 * 86400)


def sketch_levels(rng: TimeRange) -> dict[str, str]:
    """Where the features' sketches are read from which level (:data:`SKETCH_SPANS`): the
    whole two-day blocks inside the range (``span172800_start`` … ``span172800_end``), then
    in the rest the whole days, half days, quarter days, two-hour blocks and hours (the
    hours of :func:`spans`), as in :func:`levels`."""
    hours = spans(rng)
    chain = tuple((f"span{size}", size) for size in SKETCH_SPANS[1:])
    return _nested(
        {"span3600_start": hours["hours_start"], "span3600_end": hours["hours_end"]}, chain
    )


def _nested(found: dict[str, str], chain: tuple[tuple[str, int], ...]) -> dict[str, str]:
    """``found`` (the finest level's ``*_start`` and ``*_end`` first) with each level of
    ``chain`` (name, size in seconds; coarser one after another): its whole blocks inside
    the level before; none: its start and end both the end of the level before."""
    first_key, last_key = list(found)[-2:]
    outer = (_at(found[first_key]), _at(found[last_key]))
    for name, size in chain:
        first = outer[0] + timedelta(seconds=-outer[0].timestamp() % size)
        last = outer[1] - timedelta(seconds=outer[1].timestamp() % size)
        if last <= first:
            first = last = outer[1]
        found = found | {f"{name}_start": sql_time(first), f"{name}_end": sql_time(last)}
        outer = (first, last)
    return found


def sketch_filled(rng: TimeRange) -> tuple[int, ...]:
    """The sizes of :data:`SKETCH_SPANS` whose span holds time for ``rng``, finest first
    (the features' sketches read those alone), then 60 when the range has minutes at
    either end."""
    at = sketch_levels(rng)
    bounds = [(at[f"span{s}_start"], at[f"span{s}_end"]) for s in SKETCH_SPANS] + [("", "")]
    sizes = tuple(
        size
        for size, (first, last), (inner_first, inner_last) in zip(
            SKETCH_SPANS, bounds, bounds[1:], strict=False
        )
        if first < (inner_first or last) or (inner_last or first) < last
    )
    edges = at["span3600_start"] > sql_time(rng.start) or at["span3600_end"] < sql_time(rng.end)
    return sizes + ((60,) if edges else ())


def filled(rng: TimeRange) -> tuple[str, ...]:
    """The levels of :func:`levels` whose span holds time for ``rng``, coarsest first, of
    ``days``, ``quarter_days``, ``hours`` and ``minutes`` (a range of whole hours has no
    minutes, one under six hours no quarter days): the lists read those alone."""
    at = levels(rng) | {"start": sql_time(rng.start), "end": sql_time(rng.end)}
    return tuple(
        level
        for level, pieces in _PIECES.items()
        if any(at[first] < at[last] for first, last in pieces)
    )


# Each level's span as the (start, end) pieces it reads, named as in :func:`levels`.
_PIECES = {
    "days": (("days_start", "days_end"),),
    "quarter_days": (("quarter_days_start", "days_start"), ("days_end", "quarter_days_end")),
    "hours": (("hours_start", "quarter_days_start"), ("quarter_days_end", "hours_end")),
    "minutes": (("start", "hours_start"), ("hours_end", "end")),
}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def epoch(ts: datetime) -> int:
    return int((ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp())


def sql_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
