"""``shiftright errors …``: the error-analytics reports (the SQL of
``schemas/error_queries.py`` as tables) and the resolve / ignore decisions, sent to
``errors.commands.v1`` and applied by the stream worker in order with the errors."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from shiftright_server.infra.cli.common import AGO, parse_time
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.common import fail as _fail
from shiftright_server.infra.cli.common import warehouse_client as _client
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import error_queries as q

errors_app = typer.Typer(no_args_is_help=True, help="Error groups: reports and decisions.")
out = Console()
err = Console(stderr=True)

App = Annotated[str, typer.Option("--app", help="Only this app.")]
Env = Annotated[str, typer.Option("--env", help="Only this environment.")]
Since = Annotated[str, typer.Option(help="Start: 30m, 6h, 7d ago, or an ISO time.")]
Until = Annotated[str, typer.Option(help="End: like --since; default now.")]
Release = Annotated[str, typer.Option("--release", help="Only this release.")]
Limit = Annotated[int, typer.Option(help="At most this many rows.")]
Fmt = Annotated[str, typer.Option("--format", help="table or json (one object per line).")]
Action = Literal["resolve", "resolve_in_next_release", "ignore", "unresolve"]


def _report(
    query: str,
    params: dict[str, Any],
    filters: dict[str, str],
    limit: int,
    fmt: str,
    title: str,
) -> None:
    """Run a documented query; narrow it by the given column filters (empty: any)."""
    wanted = {k: v for k, v in filters.items() if v}
    where = " AND ".join(f"{k} = {{f_{k}:String}}" for k in wanted) or "1"
    sql = f"SELECT * FROM ({query}) WHERE {where} LIMIT {{out_limit:UInt32}}"
    args = {**params, **{f"f_{k}": v for k, v in wanted.items()}, "out_limit": limit}
    try:
        result = _client(_settings()).query(sql, parameters=args)
    except Exception as exc:
        _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return
    if fmt == "json":
        for row in result.result_rows:
            record = dict(zip(result.column_names, row, strict=True))
            sys.stdout.write(json.dumps(record, default=str) + "\n")
        return
    table = Table(*result.column_names, title=title)
    for row in result.result_rows:
        table.add_row(*(_cell(v) for v in row))
    out.print(table)
    out.print(f"[dim]{len(result.result_rows):,} rows[/]")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value)


def _window(since: str, until: str) -> dict[str, datetime]:
    return {"start": parse_time(since), "end": parse_time(until)}


@errors_app.command()
def top(
    app: App = "",
    env: Env = "",
    since: Since = "24h",
    until: Until = "now",
    limit: Limit = 20,
    fmt: Fmt = "table",
) -> None:
    """Which exception types are thrown most (root cause type), per app and environment."""
    _report(
        q.TOP_TYPES,
        {**_window(since, until), "limit": 1_000_000},
        {"app": app, "env": env},
        limit,
        fmt,
        "exception types thrown most",
    )


@errors_app.command()
def groups(
    app: App = "",
    env: Env = "",
    since: Since = "24h",
    until: Until = "now",
    limit: Limit = 20,
    fmt: Fmt = "table",
) -> None:
    """Which groups are thrown most."""
    _report(
        q.TOP_GROUPS,
        {**_window(since, until), "limit": 1_000_000},
        {"app": app, "env": env},
        limit,
        fmt,
        "groups thrown most",
    )


@errors_app.command()
def trend(
    group_id: str,
    step: Annotated[str, typer.Option(help="minute, hour or day.")] = "hour",
    app: App = "",
    env: Env = "",
    since: Since = "24h",
    until: Until = "now",
    limit: Limit = 1000,
    fmt: Fmt = "table",
) -> None:
    """How often a group occurs over time, and per 1,000 requests of the same route."""
    steps = {"minute": 60, "hour": 3600, "day": 86400}
    if step not in steps:
        _fail("--step must be minute, hour or day")
    _report(
        q.GROUP_RATE,
        {**_window(since, until), "group_id": group_id, "step_s": steps[step]},
        {"app": app, "env": env},
        limit,
        fmt,
        f"group {group_id} per {step}",
    )


@errors_app.command()
def users(app: App = "", limit: Limit = 20, fmt: Fmt = "table") -> None:
    """Which groups affect the most users (and customers)."""
    _report(
        q.MOST_AFFECTING,
        {"limit": 1_000_000},
        {"app": app},
        limit,
        fmt,
        "groups affecting the most users",
    )


@errors_app.command()
def new(
    app: Annotated[str, typer.Option("--app", help="The app.")],
    release: Annotated[str, typer.Option("--release", help="The release.")],
    limit: Limit = 100,
    fmt: Fmt = "table",
) -> None:
    """Groups whose first error ever came from this release."""
    _report(
        q.NEW_IN_RELEASE,
        {"app": app, "release": release},
        {},
        limit,
        fmt,
        f"groups new in {app} {release}",
    )


@errors_app.command()
def regressed(
    app: App = "",
    env: Env = "",
    release: Release = "",
    since: Since = "7d",
    until: Until = "now",
    limit: Limit = 100,
    fmt: Fmt = "table",
) -> None:
    """Groups that came back after being resolved, with the release that brought them back."""
    _report(
        q.REGRESSED,
        _window(since, until),
        {"app": app, "env": env, "release": release},
        limit,
        fmt,
        "regressed groups",
    )


@errors_app.command()
def promoted(
    from_env: Annotated[str, typer.Option("--from", help="Where errors appear first.")] = "preprod",
    to_env: Annotated[str, typer.Option("--to", help="Where they arrive later.")] = "prod",
    app: App = "",
    limit: Limit = 100,
    fmt: Fmt = "table",
) -> None:
    """Groups first seen in one environment that later reached another, and how long it took."""
    _report(
        q.PROMOTED,
        {"from_env": from_env, "to_env": to_env},
        {"app": app},
        limit,
        fmt,
        f"groups seen in {from_env} first, then in {to_env}",
    )


@errors_app.command()
def health(group_id: str, since: Since = "24h", until: Until = "now", fmt: Fmt = "table") -> None:
    """The hosts' health when a group's errors were thrown, against their usual health."""
    _report(
        q.HEALTH_AT_ERRORS,
        {**_window(since, until), "group_id": group_id},
        {},
        1000,
        fmt,
        f"health at the errors of {group_id} (ratio = at errors / usual)",
    )


# -- decisions ----------------------------------------------------------------------------
def _send(settings: Settings, cmd: Any) -> bool:
    from confluent_kafka import Producer
    from shiftright_server.producers.emitter import producer_config
    from shiftright_server.schemas import topics
    from shiftright_server.streams.grouping.keys import group_key

    producer = Producer(
        producer_config(settings.kafka.bootstrap_servers, **{"message.timeout.ms": 10_000})
    )
    delivered: list[bool] = []
    producer.produce(
        topics.named(topics.ERRORS_COMMANDS, settings.namespace),
        cmd.model_dump_json().encode(),
        group_key(cmd),
        on_delivery=lambda e, m: delivered.append(e is None),
    )
    producer.flush(15)
    return delivered == [True]


def _app_of(settings: Settings, group_id: str, app: str) -> str:
    if app:
        return app
    try:
        rows = (
            _client(settings)
            .query(
                "SELECT DISTINCT app FROM error_groups FINAL WHERE group_id = {g:String}",
                parameters={"g": group_id},
            )
            .result_rows
        )
    except Exception as exc:
        _fail(f"cannot look the group up ({exc}); pass --app")
    if len(rows) != 1:
        _fail(f"group {group_id} {'is unknown' if not rows else 'is in several apps'}; pass --app")
    return str(rows[0][0])


def _decide(group_id: str, app: str, action: Action, **fields: Any) -> None:
    from shiftright_server.schemas.records import ErrorGroupCommand

    settings = _settings()
    cmd = ErrorGroupCommand(
        app=_app_of(settings, group_id, app),
        group_id=group_id,
        action=action,
        ts=datetime.now(UTC),
        actor=_actor(),
        **fields,
    )
    if not _send(settings, cmd):
        _fail("Kafka did not acknowledge the command")
    out.print(f"{action.replace('_', ' ')}: {cmd.app} {group_id}")


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name (some containers): the decision still counts
        return ""


@errors_app.command()
def resolve(
    group_id: str,
    app: App = "",
    in_next_release: Annotated[
        bool,
        typer.Option(
            "--in-next-release",
            help="Fixed after the latest release seen (or --release): "
            "errors from a newer release regress it.",
        ),
    ] = False,
    release: Annotated[
        str, typer.Option(help="With --in-next-release: fixed after this one.")
    ] = "",
) -> None:
    """Mark a group resolved: an error thrown after now (or in a newer release) regresses it."""
    if in_next_release:
        _decide(group_id, app, "resolve_in_next_release", release=release)
    else:
        _decide(group_id, app, "resolve")


@errors_app.command()
def ignore(
    group_id: str,
    app: App = "",
    until_count: Annotated[int, typer.Option(help="Until this many more errors.")] = 0,
    until: Annotated[
        str, typer.Option(help="Until this event time: an ISO time, or 6h / 7d from now.")
    ] = "",
) -> None:
    """Ignore a group (no spiking transitions), for ever or until a count or a time."""
    now = datetime.now(UTC)
    until_at = None
    if until:  # a duration counts forward here
        until_at = now + (now - parse_time(until, now)) if AGO.match(until) else parse_time(until)
    _decide(group_id, app, "ignore", ignore_until=until_at, ignore_until_count=until_count)


@errors_app.command()
def unresolve(group_id: str, app: App = "") -> None:
    """Back to unresolved (undo resolve or ignore)."""
    _decide(group_id, app, "unresolve")


# -- import: errors the team already logs to a database -----------------------------------
import_app = typer.Typer(no_args_is_help=True, help="Bring in data you already have.")


@import_app.command("errors")
def import_errors(
    url: Annotated[
        str,
        typer.Option(
            help="SQLAlchemy URL, e.g. postgresql+psycopg://u:p@db/app or sqlite:///errors.db"
        ),
    ],
    table: Annotated[str, typer.Option(help="The table holding one exception per row.")],
    mapping: Annotated[
        str,
        typer.Option(
            "--map",
            help="field=column pairs: ts and type required; also id, message, stacktrace, app, env, release, host, instance, user_id, customer_id, session_id, route, level, handled.",
        ),
    ],
    follow: Annotated[bool, typer.Option("--follow", help="Keep importing new rows.")] = False,
    interval: Annotated[float, typer.Option(help="With --follow: seconds between polls.")] = 5.0,
    app: App = "",
    env: Env = "",
) -> None:
    """Rows of a table → error events, from where the last run stopped (position kept in
    the state dir). Without --follow: everything new, once."""
    import signal
    import threading

    from shiftright_server.producers.emitter import Emitter
    from shiftright_server.producers.importer import (
        ImportSetupError,
        ImportStats,
        PositionFile,
        RowMapper,
        TableImporter,
        parse_mapping,
        position_path,
    )

    settings = _settings()
    try:
        mapper = RowMapper(
            parse_mapping(mapping),
            table,
            {"app": app, "env": env},
            timedelta(days=settings.streams.max_age_days),
        )
        positions = PositionFile(position_path(settings.resolved_state_dir(), url, table))
        importer = TableImporter(url, table, mapper, positions)
    except ImportSetupError as exc:
        _fail(str(exc))
        return
    except Exception as exc:  # unreachable database, unknown table, missing driver
        _fail(f"cannot read {table}: {str(exc).strip().splitlines()[0]}")
        return
    emitter = Emitter(settings.kafka.bootstrap_servers, settings.namespace)

    def report(stats: ImportStats) -> None:
        skipped = ", ".join(f"{k} {v:,}" for k, v in stats.skipped.items()) or "none"
        out.print(f"rows {stats.rows:,} · emitted {stats.emitted:,} · skipped: {skipped}")

    try:
        if not follow:
            report(importer.run_once(emitter))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        out.print(f"following {table} every {interval:g} s (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            importer.follow(emitter, interval, stop.is_set, report)
    except RuntimeError as exc:
        _fail(str(exc))
