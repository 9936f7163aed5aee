"""The dashboard's panels over the daily, hourly, quarter-hourly and minutely rollups
(migrations 0012, 0013, 0014, 0017 and 0019) give the numbers the raw events give over the same range: events spread
over several hours, and more over three days, go in through the raw tables, the panels'
own queries read a range that starts and ends inside an hour, one that also spans two
whole days, and the same asked through the page's rule (widened to whole hours), and each
figure is checked against SQL over events_usage / events_health with the same aggregate
functions (their merged states equal the raw rows' states)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from shiftright_server.dashboard import errors_sql, queries
from shiftright_server.dashboard.overview import quarters
from shiftright_server.dashboard.timerange import (
    TimeRange,
    filled,
    levels,
    parse_range,
    sketch_filled,
    sketch_levels,
    spans,
    sql_time,
)
from shiftright_server.dashboard.usage import busiest, list_queries
from shiftright_server.dashboard.warehouse import WarehouseReader
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import error_queries

from tests.integration.conftest import fresh_settings

START = datetime(2026, 11, 26, 10, 17, tzinfo=UTC)
END = datetime(2026, 11, 26, 14, 43, tzinfo=UTC)
RANGE = TimeRange(START, END, "")
T0_MS = int(datetime(2026, 11, 26, 9, 30, tzinfo=UTC).timestamp() * 1000)
# Two whole days (25 and 26 November), whole quarter days, hours and minutes before and
# after them.
DAYS = TimeRange(
    datetime(2026, 11, 24, 4, 17, tzinfo=UTC), datetime(2026, 11, 27, 9, 43, tzinfo=UTC), ""
)
DAYS_T0_MS = int(datetime(2026, 11, 24, 4, 0, tzinfo=UTC).timestamp() * 1000)
# The same days asked for in a URL: a range over a day is widened to whole hours (04:00 …
# 10:00), so no minute is read from the minutely rollups.
WIDE = parse_range(None, "2026-11-24T04:17Z", "2026-11-27T09:43Z", datetime.now(UTC))
# One whole day (25 November) that no whole two-day block holds, half days and two-hour
# blocks at both ends (the features' sketch levels of migration 0019).
DAY = TimeRange(
    datetime(2026, 11, 24, 4, 17, tzinfo=UTC), datetime(2026, 11, 26, 15, 43, tzinfo=UTC), ""
)

# 6,000 events over 5.5 hours from 09:30 (before the range to after it; `gap` ms apart):
# 7 features with uneven uses, 5 routes (some events without one), 3 releases, 3 origins,
# 150 users, 20 customers, about 1 in 9 without a duration and 1 in 25 failed.
USAGE = """INSERT INTO {db}.events_usage
    (event_id, ts, app, env, release, host, user_id, customer_id, origin, name, route,
     method, status_code, duration_ms, received_at, _topic, _partition, _offset, _index)
SELECT generateUUIDv4(number), fromUnixTimestamp64Milli(toInt64({t0} + number * {gap}), 'UTC'),
    if(h % 5 = 0, 'catalog', 'checkout'), if(bitShiftRight(h, 4) % 3 = 0, 'preprod', 'prod'),
    concat('1.', toString(bitShiftRight(h, 8) % 3)), 'host-1',
    if(bitShiftRight(h, 12) % 11 = 0, '', concat('u', toString(bitShiftRight(h, 16) % 150))),
    if(bitShiftRight(h, 24) % 7 = 0, '', concat('c', toString(bitShiftRight(h, 28) % 20))),
    arrayElement(['user', 'user', 'user', 'test', 'synthetic', ''], bitShiftRight(h, 32) % 6 + 1),
    concat('feature.', toString(toUInt32(floor(exp((bitShiftRight(h, 36) % 1000) / 1000 * log(8)))) - 1)),
    if(bitShiftRight(h, 46) % 8 = 0, '', concat('/r', toString(bitShiftRight(h, 50) % 5))), 'GET',
    if(bitShiftRight(h, 54) % 25 = 0, 503, 200),
    if(bitShiftRight(h, 58) % 9 = 0, NULL, (h % 4000) / 7.0),
    now64(3), 'rollups-test', 0, number, 0
FROM (SELECT number, cityHash64(number) AS h FROM numbers(6000))
"""
HEALTH = """INSERT INTO {db}.events_health
    (event_id, ts, app, env, host, metrics, received_at, _topic, _partition, _offset, _index)
SELECT generateUUIDv4(number), fromUnixTimestamp64Milli(toInt64({t0} + intDiv(number, 4) * 20000), 'UTC'),
    'checkout', 'prod', concat('host-', toString(number % 4)),
    map('system.cpu.utilization', (cityHash64(number) % 1000) / 1000.0,
        'system.memory.utilization', (cityHash64(number) % 700) / 1000.0),
    now64(3), 'rollups-test', 0, number, 0
FROM numbers(4000)
"""
# 300 errors of one group from two of the four hosts, each with the health its host had.
ERRORS = """INSERT INTO {db}.errors_grouped (event_id, ts, app, env, host, group_id, health_ts, health)
SELECT generateUUIDv4(number), fromUnixTimestamp64Milli(toInt64({t0} + number * 61000), 'UTC') AS at,
    'checkout', 'prod', concat('host-', toString(number % 2)), 'g1', at,
    map('system.cpu.utilization', (cityHash64(number) % 1000) / 1000.0,
        'system.memory.utilization', (cityHash64(number) % 700) / 1000.0)
FROM numbers(300)
"""
# 500 errors over 5 hours from 09:30 in 4 groups ({prefix}0 … {prefix}3) of two apps,
# two envs and two releases, from 40 users (1 in 6 without one); and each group's state.
LIST_ERRORS = """INSERT INTO {db}.errors_grouped (event_id, ts, app, env, release, host, user_id, group_id)
SELECT generateUUIDv4(number), fromUnixTimestamp64Milli(toInt64({t0} + number * 37000), 'UTC'),
    if(h % 3 = 0, 'catalog', 'checkout'), if(bitShiftRight(h, 8) % 4 = 0, 'preprod', 'prod'),
    concat('1.', toString(bitShiftRight(h, 16) % 2)), 'host-9',
    if(bitShiftRight(h, 24) % 6 = 0, '', concat('u', toString(bitShiftRight(h, 32) % 40))),
    concat('{prefix}', toString(bitShiftRight(h, 40) % 4))
FROM (SELECT number, cityHash64(number, '{prefix}') AS h FROM numbers(500))
"""
LIST_GROUPS = """INSERT INTO {db}.error_groups (group_id, app, title, status, version)
SELECT DISTINCT group_id, app, concat('Error in ', group_id), 'unresolved', 1 FROM {db}.errors_grouped
"""
# Some errors of each list group stored twice (a replayed batch): FINAL counts them once.
STORED_TWICE = """INSERT INTO {db}.errors_grouped
SELECT * FROM {db}.errors_grouped WHERE group_id != 'g1' AND user_id != '' LIMIT 120
"""
RAW_WHERE = "ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"


LEVELS = [f"usage_{kind}_list_levels" for kind in ("feature", "route")]
# Added on an upgrade too: migration 0017's quarter hours, copied from the minutes,
# 0018's hours of each host's health, 0022's errors and 0023's host health sorted by hour.
LATER = [
    *LEVELS,
    "usage_app_quarter_hourly",
    "health_hourly",
    "errors_grouped_by_hour",
    "health_minutely_by_hour",
]

# Migration 0024's tables and the views that fill them (0013's hours and 0014's and
# 0016's levels, which it copies and drops, come back with those migrations on the
# upgrade; the routes' sketches fill from 0012's hours).
LEVELS_OF_THE_HOURS = [
    "usage_feature_sketches_mv",
    "usage_feature_sketches",
    "usage_feature_choices_mv",
    "usage_feature_choices",
    "usage_route_choices_mv",
    "usage_route_choices",
    "usage_route_sketches_mv",
    "usage_route_sketches",
]


@pytest.fixture(scope="module")
def loaded(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The first events go in before migrations 0013, 0014, 0016, 0017, 0018, 0019, 0022,
    0023 and 0024 are applied (as on an upgrade: they copy their periods from the finer
    tables, or the errors; 0024 copies 0016's choices and builds on 0019's sketches), the
    rest after (their views fill them). Merges of the errors are stopped: the rows stored
    twice stay stored twice."""
    settings = fresh_settings("127.0.0.1:9", clickhouse_url, tmp_path_factory.mktemp("state"))
    apply_schema(settings)
    db = settings.clickhouse.database
    client = get_client(settings.clickhouse, database=db)
    for name in [f"{t}_mv" for t in LATER] + LATER + LEVELS_OF_THE_HOURS:
        client.command(f"DROP TABLE {name}")
    client.command(
        "ALTER TABLE schema_migrations DELETE WHERE version IN (13, 14, 16, 17, 18, 19, 22, 23, 24)",
        settings={"mutations_sync": 2},
    )
    client.command(USAGE.format(db=db, t0=T0_MS, gap=3300))
    client.command(HEALTH.format(db=db, t0=T0_MS))
    client.command("SYSTEM STOP MERGES errors_grouped")
    client.command(LIST_ERRORS.format(db=db, t0=T0_MS, prefix="early-"))
    apply_schema(settings)
    client.command("SYSTEM STOP MERGES errors_grouped_by_hour")
    client.command(USAGE.format(db=db, t0=DAYS_T0_MS, gap=48_000))  # 80 hours, over 4 days
    client.command(HEALTH.format(db=db, t0=DAYS_T0_MS))  # 24 November, through the views
    client.command(ERRORS.format(db=db, t0=T0_MS))
    client.command(LIST_ERRORS.format(db=db, t0=T0_MS, prefix="late-"))
    for statement in (STORED_TWICE, LIST_GROUPS):
        client.command(statement.format(db=db))
    client.close()
    yield settings


@pytest.fixture(scope="module")
def reader(loaded: Settings) -> Iterator[WarehouseReader]:
    made = WarehouseReader(loaded.clickhouse)
    yield made
    made.close()


def params(
    release: str = "", step: int = 3600, rng: TimeRange = RANGE, **more: Any
) -> dict[str, Any]:
    return {
        "start": sql_time(rng.start),
        "end": sql_time(rng.end),
        "app": "",
        "env": "",
        "release": release,
        "step": step,
        **spans(rng, step),
        **quarters(rng, step),
        **(levels(rng) | sketch_levels(rng) if step == 3600 else {}),
        **more,
    }


def raw(
    reader: WarehouseReader, sql: str, release: str = "", rng: TimeRange = RANGE, **more: Any
) -> list[tuple[Any, ...]]:
    return reader.query(sql.replace("{where}", RAW_WHERE), params(release, rng=rng, **more)).rows


def listed(
    reader: WarehouseReader, kind: str, release: str, rng: TimeRange
) -> list[dict[str, Any]]:
    """The feature (route) list as the page reads it: of every release, or of one."""
    return busiest(reader, *list_queries(kind, release, rng), params(release, rng=rng))


def test_the_ranges_read_whole_days_quarter_days_hours_and_edge_minutes_of_those_they_hold() -> (
    None
):
    assert levels(RANGE) == {
        "hours_start": "2026-11-26 11:00:00",
        "hours_end": "2026-11-26 14:00:00",
        "quarter_days_start": "2026-11-26 14:00:00",
        "quarter_days_end": "2026-11-26 14:00:00",
        "days_start": "2026-11-26 14:00:00",
        "days_end": "2026-11-26 14:00:00",
    }
    assert levels(DAYS) == {
        "hours_start": "2026-11-24 05:00:00",
        "hours_end": "2026-11-27 09:00:00",
        "quarter_days_start": "2026-11-24 06:00:00",
        "quarter_days_end": "2026-11-27 06:00:00",
        "days_start": "2026-11-25 00:00:00",
        "days_end": "2026-11-27 00:00:00",
    }
    assert (WIDE.start, WIDE.end) == (
        DAYS.start.replace(minute=0),
        DAYS.end.replace(minute=0, hour=10),
    )
    assert levels(WIDE)["hours_start"] == sql_time(WIDE.start)
    assert levels(WIDE)["hours_end"] == sql_time(WIDE.end)  # no minutes at either end
    assert filled(RANGE) == ("hours", "minutes")
    assert filled(DAYS) == ("days", "quarter_days", "hours", "minutes")
    assert filled(WIDE) == ("days", "quarter_days", "hours")
    # every level of the features' sketches in one of the ranges
    assert sketch_filled(RANGE) == (3600, 7200, 60)
    assert sketch_filled(DAYS) == (3600, 7200, 21600, 43200, 172800, 60)
    assert sketch_filled(DAY) == (3600, 7200, 21600, 43200, 86400, 60)


@pytest.mark.parametrize(
    ("release", "rng"),
    [
        ("", RANGE),
        ("1.2", RANGE),
        ("", DAYS),
        ("1.0", DAYS),
        ("", WIDE),
        ("1.1", WIDE),
        ("", DAY),
    ],
)
def test_features_equal_the_raw_events(
    reader: WarehouseReader, release: str, rng: TimeRange
) -> None:
    shown = listed(reader, "features", release, rng)
    expected = raw(
        reader,
        """SELECT app, env, name, count() AS uses, countIf(status_code >= 500),
               sumMap(map(if(origin = '', 'user', toString(origin)), toUInt64(1))),
               uniqCombinedIf(12)(user_id, user_id != ''),
               uniqCombinedIf(12)(customer_id, customer_id != ''),
               quantilesDD(0.01, 0.5, 0.9, 0.99)(duration_ms)
        FROM events_usage WHERE {where}
          AND ({release:String} = '' OR release = {release:String})
        GROUP BY app, env, name ORDER BY uses DESC, app, env, name LIMIT 50""",
        release,
        rng,
    )
    got = {
        (r["app"], r["env"], r["name"]): (
            r["uses"],
            r["failures"],
            r["origins"],
            r["users"],
            r["customers"],
            r["q"],
        )
        for r in shown
    }
    assert got == {tuple(row[:3]): tuple(row[3:]) for row in expected}
    assert len(got) > 20 and sum(v[1] for v in got.values()) > 0  # some failed
    assert [r["name"] for r in shown] == [row[2] for row in expected]  # ordered by uses
    assert {origin for v in got.values() for origin in v[2]} == {"user", "test", "synthetic"}


@pytest.mark.parametrize("step", [900, 3600])
def test_feature_trend_equals_the_raw_events(reader: WarehouseReader, step: int) -> None:
    names = ["feature.0", "feature.3", "feature.6"]
    trend = reader.query(queries.FEATURE_SERIES, params("", step, names=names)).rows
    expected = raw(
        reader,
        f"""SELECT app, env, name, toStartOfInterval(ts, toIntervalSecond({step})) AS t, count()
        FROM events_usage WHERE {{where}} AND name IN ('feature.0', 'feature.3', 'feature.6')
        GROUP BY app, env, name, t""",
    )
    assert sorted(trend) == sorted(
        (a, e, n, t.replace(tzinfo=UTC), c) for a, e, n, t, c in expected
    )


@pytest.mark.parametrize(
    ("release", "rng"),
    [("", RANGE), ("1.0", RANGE), ("", DAYS), ("1.2", DAYS), ("", WIDE), ("", DAY)],
)
def test_routes_equal_the_raw_events(reader: WarehouseReader, release: str, rng: TimeRange) -> None:
    shown = [tuple(r.values()) for r in listed(reader, "routes", release, rng)]
    expected = raw(
        reader,
        """SELECT app, env, route, count() AS uses, countIf(status_code >= 500),
               uniqCombinedIf(12)(user_id, user_id != ''), quantileDD(0.01, 0.95)(duration_ms)
        FROM events_usage WHERE {where} AND route != ''
          AND ({release:String} = '' OR release = {release:String})
        GROUP BY app, env, route ORDER BY uses DESC, app, env, route LIMIT 20""",
        release,
        rng,
    )
    assert shown == expected and len(shown) == 20


@pytest.mark.parametrize(
    ("step", "rng"), [(900, RANGE), (3600, RANGE), (300, RANGE), (900, DAYS), (1800, WIDE)]
)
def test_overview_series_equal_the_raw_events(
    reader: WarehouseReader, step: int, rng: TimeRange
) -> None:
    """Quarter hours (900 and 1800 s buckets) come from migration 0017's table between the
    minutes at either end; 3600 s buckets from the hours, with quarter hours and minutes
    around them."""
    usage = reader.query(queries.USAGE_SERIES, params(step=step, rng=rng)).rows
    latency = reader.query(queries.LATENCY_SERIES, params(step=step, rng=rng)).rows
    expected = raw(
        reader,
        f"""SELECT app, env, toStartOfInterval(ts, toIntervalSecond({step})) AS t, count(),
               countIf(status_code >= 500), quantilesDD(0.01, 0.5, 0.95)(duration_ms)
        FROM events_usage WHERE {{where}} GROUP BY app, env, t ORDER BY app, env, t""",
        rng=rng,
    )
    assert len(expected) >= 20
    assert [r[:5] for r in usage] == [
        (a, e, t.replace(tzinfo=UTC), n, f) for a, e, t, n, f, _ in expected
    ]
    assert [_nan(r[3]) for r in latency] == [_nan(q) for *_, q in expected]


@pytest.mark.parametrize("rng", [RANGE, DAYS, WIDE])
def test_overview_latency_over_the_range_equals_the_raw_events(
    reader: WarehouseReader, rng: TimeRange
) -> None:
    total = reader.query(queries.LATENCY_TOTAL, {**params(rng=rng), **quarters(rng)}).rows
    by_scope = raw(
        reader,
        "SELECT app, env, quantilesDD(0.01, 0.5, 0.95)(duration_ms) FROM events_usage WHERE {where} GROUP BY app, env",
        rng=rng,
    )
    assert sorted(total) == sorted(by_scope)


def _nan(quantiles: list[float]) -> list[float | None]:
    """A bucket without durations answers NaN quantiles (unequal even to themselves)."""
    return [None if q != q else q for q in quantiles]


def test_overview_health_equals_the_raw_events(reader: WarehouseReader) -> None:
    shown = reader.query(queries.HEALTH_SERIES, params(step=3600)).rows
    expected = raw(
        reader,
        """SELECT app, env, toStartOfInterval(ts, toIntervalSecond(3600)) AS t, metric, avg(value)
        FROM events_health ARRAY JOIN mapKeys(metrics) AS metric, mapValues(metrics) AS value
        WHERE {where} GROUP BY app, env, t, metric ORDER BY app, env, t, metric""",
    )
    assert len(shown) == len(expected) == 2 * 5
    for got, want in zip(sorted(shown), expected, strict=True):
        assert got[:4] == (want[0], want[1], want[2].replace(tzinfo=UTC), want[3])
        assert got[4] == pytest.approx(want[4], rel=1e-12)


@pytest.mark.parametrize(
    "rng",
    [
        RANGE,  # whole hours and the minutes at either end
        TimeRange(START.replace(minute=0), END.replace(minute=0), ""),  # whole hours only
        TimeRange(START, START.replace(minute=43), ""),  # minutes only
    ],
)
def test_group_page_health_equals_the_analysts_question(
    reader: WarehouseReader, rng: TimeRange
) -> None:
    span = {"start": sql_time(rng.start), "end": sql_time(rng.end), **spans(rng)}
    shown = reader.query(errors_sql.health_at_errors(span), {**span, "group_id": "g1"}).rows
    asked = {"start": rng.start, "end": rng.end, "group_id": "g1"}
    expected = reader.query(error_queries.HEALTH_AT_ERRORS, asked).rows
    assert shown == expected
    assert len(shown) == 2 and all(r[2] is not None and r[4] > 0 for r in shown)


@pytest.mark.parametrize(
    ("release", "rng"),
    [("", RANGE), ("1.1", RANGE), ("", DAYS), ("", TimeRange(START, START.replace(minute=43), ""))],
)
def test_errors_list_equals_the_stored_errors_each_counted_once(
    reader: WarehouseReader, release: str, rng: TimeRange
) -> None:
    """The list reads migration 0022's copy sorted by hour (filled on the upgrade for the
    early- groups, by its view for the late- ones and g1); each error stored twice in
    errors_grouped counts once, as with FINAL there."""
    query = errors_sql.GROUPS.replace("{order}", errors_sql.SORTS["events"])
    shown = reader.query(query, params(release, rng=rng, text="", status="")).dicts()
    expected = raw(
        reader,
        """SELECT app, group_id, count(), uniqExactIf(user_id, user_id != ''),
               arraySort(groupUniqArray(env))
        FROM errors_grouped FINAL WHERE {where}
          AND ({release:String} = '' OR release = {release:String})
        GROUP BY app, group_id""",
        release,
        rng,
    )
    got = [(g["app"], g["group_id"], g["events"], g["users"], g["envs"]) for g in shown]
    assert sorted(got) == sorted(expected)
    stored = reader.query("SELECT count() FROM errors_grouped WHERE group_id != 'g1'", {})
    assert stored.rows[0][0] == 1000 + 120  # the rows stored twice are there twice
    series = reader.query(
        errors_sql.GROUP_SERIES, params(rng=rng, ids=[g[1] for g in got], step=900)
    ).rows
    assert sorted(series) == raw(
        reader,
        """SELECT app, group_id, toStartOfInterval(ts, toIntervalSecond(900)) AS t, count()
        FROM errors_grouped FINAL WHERE {where} AND group_id IN {ids:Array(String)}
        GROUP BY app, group_id, t ORDER BY app, group_id, t""",
        rng=rng,
        ids=[g[1] for g in got],
    )
    if rng in (RANGE, DAYS) and not release:
        assert {g[1][:5] for g in got} == {"early", "late-", "g1"} and len(got) == 17
        assert [g["events"] for g in shown] == sorted((g[2] for g in got), reverse=True)


@pytest.mark.parametrize(("step", "rng"), [(900, RANGE), (300, RANGE), (3600, DAYS)])
def test_health_page_equals_the_raw_events(
    reader: WarehouseReader, step: int, rng: TimeRange
) -> None:
    """The hosts and their series read migration 0023's copy sorted by hour (filled on the
    upgrade for 26 November, by its view for 24 November)."""
    asked = params(step=step, rng=rng, metrics=list(queries.HOST_METRICS))
    hosts = reader.query(queries.HOSTS, asked).rows
    series = reader.query(queries.HOST_SERIES, asked).rows
    expected_hosts = raw(
        reader,
        """SELECT app, env, host, max(toStartOfMinute(ts)) FROM events_health WHERE {where}
        GROUP BY app, env, host ORDER BY app, env, host""",
        rng=rng,
    )
    expected = raw(
        reader,
        f"""SELECT app, env, host, metric, toStartOfInterval(ts, toIntervalSecond({step})) AS t,
               avg(value)
        FROM events_health ARRAY JOIN mapKeys(metrics) AS metric, mapValues(metrics) AS value
        WHERE {{where}} GROUP BY app, env, host, metric, t ORDER BY app, env, host, metric, t""",
        rng=rng,
    )
    assert [(*h[:3], h[3].replace(tzinfo=UTC)) for h in hosts] == [
        (*h[:3], h[3].replace(tzinfo=UTC)) for h in expected_hosts
    ]
    assert len(hosts) == 4 and len(expected) >= 20
    assert len(series) == len(expected)
    for got, want in zip(sorted(series), expected, strict=True):
        assert got[:5] == (*want[:4], want[4].replace(tzinfo=UTC))
        assert got[5] == pytest.approx(want[5], rel=1e-12)


def test_a_retried_insert_does_not_count_twice_in_the_hourly_rollups(
    warehouse_settings: Settings,
) -> None:
    db = warehouse_settings.clickhouse.database
    client = get_client(warehouse_settings.clickhouse, database=db)
    for _ in range(2):
        client.command(
            USAGE.format(db=db, t0=T0_MS, gap=3300).replace("numbers(6000)", "numbers(500)"),
            settings={"insert_deduplication_token": "rollups-retry"},
        )
    assert client.command("SELECT count() FROM events_usage") == 500
    for table in (
        "usage_feature_list_levels WHERE span = 86400",
        "usage_feature_list_levels WHERE span = 3600",
        "usage_features_hourly",
        "usage_feature_sketches WHERE span = 7200",
        "usage_feature_sketches WHERE span = 172800",
        "usage_feature_choices WHERE span = 3600",
        "usage_feature_choices WHERE span = 86400",
        "usage_app_hourly",
        "usage_features_minutely",
    ):
        assert client.command(f"SELECT sum(events) FROM {table}") == 500, table
    routed = client.query("SELECT count() FROM events_usage WHERE route != ''").result_rows[0][0]
    for span in (3600, 172800):
        sql = f"SELECT sum(events) FROM usage_route_sketches WHERE span = {span}"
        assert client.command(sql) == routed > 0
    client.close()
