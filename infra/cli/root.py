"""The ``shiftright`` app: the pipeline commands (``up``, ``down``, ``status``, ``sql``,
``migrate``, ``simulate``, ``detect``) and the command groups of the other modules."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from shiftright_server.infra.cli.alerts import register as register_alerting
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.common import fail as _fail
from shiftright_server.infra.cli.errors import errors_app, import_app
from shiftright_server.infra.cli.flags import flags_app
from shiftright_server.infra.cli.gateway import gateway_app
from shiftright_server.infra.cli.links import links_app
from shiftright_server.infra.cli.mark import mark_app
from shiftright_server.infra.cli.qa import qa_app
from shiftright_server.infra.cli.qa_coverage import import_coverage
from shiftright_server.infra.cli.users import first_admin, tokens_app, users_app
from shiftright_server.infra.cli.warehouse import warehouse_app
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas.migrate import Plan

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="shiftright: usage, errors and health of your apps, from Kafka to ClickHouse.",
)
out = Console()
err = Console(stderr=True)


# -- up / down / status ----------------------------------------------------------------
@app.command()
def up(
    simulate: Annotated[bool, typer.Option(help="Also run the traffic simulator.")] = True,
    rate: Annotated[float, typer.Option(help="Simulated usage+error events per second.")] = 300.0,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Stream workers to start (default: streams.workers, 1)."),
    ] = None,
    sinks: Annotated[
        int | None,
        typer.Option(min=1, help="ClickHouse sinks to start (default: sink.instances, 1)."),
    ] = None,
    watch: Annotated[
        bool | None, typer.Option(help="Follow the live status line (default: on a terminal).")
    ] = None,
) -> None:
    """Start Kafka, the warehouse, the stream workers, the sink (and the simulator)."""
    from shiftright_server.infra.ops.startup import bring_up

    settings = _scaled(_settings(), workers, sinks)
    try:
        bring_up(settings, out, simulate=simulate, rate=rate)
    except Exception as exc:  # a clear message, not a traceback, for start-up failures
        _fail(
            f"{exc}\nRun `shiftright down` to stop what did start; logs: {settings.resolved_state_dir() / 'logs'}"
        )
    _print_where(settings)
    admin = first_admin(settings)
    if admin:  # one line, never wrapped: the link is copied from it
        out.print(
            f"[bold]First admin[/] (sign in once with this link, then choose a password): {admin}",
            soft_wrap=True,
        )
    _status_line(settings, follow=sys.stdout.isatty() if watch is None else watch)


def _scaled(settings: Settings, workers: int | None, sinks: int | None) -> Settings:
    streams = settings.streams.model_copy(update={"workers": workers or settings.streams.workers})
    sink = settings.sink.model_copy(update={"instances": sinks or settings.sink.instances})
    return settings.model_copy(update={"streams": streams, "sink": sink})


@app.command()
def down() -> None:
    """Stop every locally started component (simulator first, Kafka last)."""
    from shiftright_server.infra.ops.supervisor import ORDER, Supervisor

    supervisor = Supervisor(_settings())
    started = supervisor.started()
    names = started + [name for name in ORDER if name not in started]
    for name in reversed(names):
        stopped = supervisor.stop(name)
        out.print(f"{'stopped' if stopped else 'not running':>12}  {name}")


@app.command()
def status(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep refreshing.")] = False,
) -> None:
    """Each component's health, then messages in, events stored, lag and dead letters."""
    from shiftright_server.infra.ops.startup import component_health

    settings = _settings()
    table = Table("component", "state", "detail")
    healthy = True
    for name, ok, detail in component_health(settings):
        healthy &= ok
        table.add_row(name, "[green]up[/]" if ok else "[red]down[/]", detail)
    out.print(table)
    _print_members(settings)
    _status_line(settings, follow=watch)
    if not healthy:
        raise typer.Exit(3)


def _print_members(settings: Settings) -> None:
    from shiftright_server.infra.ops.status import group_members

    try:
        members = group_members(settings)
    except Exception as exc:
        out.print(f"[yellow]consumer groups unavailable:[/] {exc}")
        return
    if not members:
        return
    table = Table("group", "member", "partitions (raw events)", "lag (messages)")
    for m in members:
        table.add_row(m.role, m.member, _partition_list(m.partitions), f"{m.lag:,}")
    out.print(table)


def _partition_list(partitions: list[tuple[str, int]]) -> str:
    """``0,1,2,3 of 4 topics`` when every topic has the same partitions, else per topic."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    shapes = {tuple(ps) for ps in by_topic.values()}
    if len(shapes) == 1:
        (only,) = shapes
        return f"{','.join(map(str, only))} of {len(by_topic)} topics"
    return " ".join(f"{t}[{','.join(map(str, ps))}]" for t, ps in by_topic.items()) or "none"


def _status_line(settings: Settings, follow: bool) -> None:
    from shiftright_server.infra.clickhouse import get_client
    from shiftright_server.infra.ops.status import collect

    try:
        client = get_client(settings.clickhouse, database=settings.clickhouse.database)
    except Exception as exc:
        out.print(f"[yellow]warehouse unreachable:[/] {exc}")
        client = None

    def line() -> str:
        f = collect(settings, client)
        lag = " · ".join(f"{k} {v:,}" for k, v in f.lag.items()) or "?"
        text = (
            f"messages in [bold]{f.messages_in:,}[/] · events stored [bold]{f.stored_total:,}[/]"
            f" · lag (messages) {lag} · dead letters [bold]{f.dead_letters:,}[/] · "
            f"rollups {f.rollups:,}"
        )
        if f.step_failures:
            failed = ", ".join(f"{step} {n:,}" for step, n in f.step_failures.items())
            text += (
                f"\n[red]records a stream step failed on (dead letters, step_failed):[/] {failed}"
            )
        return text + ("".join(f"\n[red]{e}[/]" for e in f.errors))

    if not follow:
        out.print(line())
        return
    out.print("[dim]live status — Ctrl-C stops watching; the pipeline keeps running[/]")
    try:
        with Live(line(), console=out, refresh_per_second=1) as live:
            while True:
                time.sleep(2)
                live.update(line())
    except KeyboardInterrupt:
        pass


def _print_where(settings: Settings) -> None:
    ch = settings.clickhouse
    table = Table(show_header=False, box=None)
    table.add_row("Dashboard", settings.dashboard.url)
    table.add_row("Kafka", settings.kafka.bootstrap_servers)
    table.add_row("Warehouse", f"{ch.http_url}  (database {ch.database})")
    table.add_row(
        "Query", 'shiftright sql "SELECT app, env, count() FROM events_usage GROUP BY ALL"'
    )
    table.add_row(
        "curl",
        f"curl '{ch.http_url}/?database={ch.database}' --data-binary 'SELECT count() FROM events_error'",
    )
    table.add_row("Logs", str(settings.resolved_state_dir() / "logs"))
    table.add_row("Stop", "shiftright down")
    out.print(table)


# -- data --------------------------------------------------------------------------------
@app.command()
def sql(
    query: Annotated[
        str, typer.Argument(help="The SQL to run, e.g. 'SELECT count() FROM events_usage'.")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="table, or any ClickHouse format (TSV, CSV, JSONEachRow…)."
        ),
    ] = "table",
) -> None:
    """Run SQL against the warehouse (embedded or a ClickHouse server)."""
    from shiftright_server.infra.clickhouse import get_client

    settings = _settings()
    try:
        client = get_client(settings.clickhouse, database=settings.clickhouse.database)
        if fmt != "table":
            sys.stdout.write(client.raw_query(query, fmt=fmt).decode())
            return
        result = client.query(query)
    except Exception as exc:
        _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return
    table = Table(*result.column_names)
    for row in result.result_rows:
        table.add_row(*(_cell(v) for v in row))
    out.print(table)
    out.print(f"[dim]{len(result.result_rows):,} rows[/]")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    return str(value)


@app.command()
def migrate(
    print_ddl: Annotated[
        bool,
        typer.Option(
            "--print-ddl",
            help="Print every statement the configured layout runs (single server or "
            "cluster) instead of running anything.",
        ),
    ] = False,
) -> None:
    """Create the database and apply pending schema migrations (idempotent)."""
    from shiftright_server.infra.clickhouse import get_client, schema_layout
    from shiftright_server.schemas.migrate import migrate as run
    from shiftright_server.schemas.migrate import plan

    settings = _settings()
    ch = settings.clickhouse
    try:
        if print_ddl:
            _print_plan(plan(ch.database, schema_layout(ch)))
            return
        applied = run(get_client(ch), ch.database, schema_layout(ch))
    except Exception as exc:
        _fail(str(exc))
        return
    for m in applied:
        out.print(f"applied  {m.version:04d}_{m.name}")
    out.print(f"schema up to date ({len(applied)} applied now)")


@app.command()
def topics() -> None:
    """Create every topic the pipeline needs on the configured Kafka (idempotent)."""
    from shiftright_server.infra.kafka.topics import create_topics
    from shiftright_server.schemas.topics import plan as topic_plan

    settings = _settings()
    k = settings.kafka
    try:
        created = set(create_topics(settings))
    except Exception as exc:
        _fail(f"{exc}\nKafka: {k.bootstrap_servers}")
        return
    for topic_set in topic_plan(settings.namespace, k.partitions):
        for name, partitions in topic_set.partitions.items():
            state = "[green]created[/]" if name in created else "exists "
            out.print(f"{state}  {name} ({partitions} partitions)")
    out.print(f"topics ready on {k.bootstrap_servers} ({len(created)} created now)")


def _print_plan(planned: Plan) -> None:
    for statement in planned.setup:
        print(f"{statement};\n")
    for migration, statements in planned.steps:
        print(f"-- {migration.version:04d}_{migration.name}")
        for statement in statements:
            print(f"{statement};\n")


@app.command()
def simulate(
    rate: Annotated[
        float, typer.Option(help="Usage+error events per second (before the diurnal factor).")
    ] = 300.0,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run; default: until stopped.")
    ] = None,
    incident: Annotated[
        list[str] | None, typer.Option(help="e.g. error-spike@+60s/120s (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option()] = 7,
    flat: Annotated[
        bool, typer.Option("--flat", help="Keep the rate flat instead of following the day.")
    ] = False,
) -> None:
    """Emit realistic traffic for two apps in preprod and prod."""
    import signal

    from shiftright_server.producers.emitter import Emitter
    from shiftright_server.producers.simulator import Simulator, parse_incident, run_realtime

    settings = _settings()
    now = datetime.now(UTC)
    try:
        incidents = [parse_incident(text, now) for text in incident or []]
    except ValueError as exc:
        _fail(str(exc))
        return
    emitter = Emitter(settings.kafka.bootstrap_servers, settings.namespace)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim = Simulator(seed=seed, rate=rate, incidents=incidents, diurnal=not flat)
    try:
        sent = run_realtime(emitter, sim, duration=duration, stop=stop)
    except KeyboardInterrupt:
        sent = -1
    left = emitter.flush(30)
    out.print(
        f"emitted {sent:,} events; delivered {emitter.delivered:,}; undelivered {left}; dropped {dict(emitter.dropped)}"
    )


# -- command groups of their own: gateway, errors/import, alerting, mark -------------------
app.add_typer(gateway_app, name="gateway")
app.add_typer(errors_app, name="errors")
app.add_typer(import_app, name="import")
register_alerting(app)
app.add_typer(flags_app, name="flags")
app.add_typer(mark_app, name="mark")
app.add_typer(qa_app, name="qa")

import_app.command("coverage")(import_coverage)
users_app.add_typer(warehouse_app, name="warehouse")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(links_app, name="links")


# -- detect: the stream's anomaly detector, offline (streams/alerting/detect.py) ------------
@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def detect(ctx: typer.Context) -> None:
    """One anomaly score per `timestamp,value` row: `shiftright detect --csv FILE` (see --help)."""
    from shiftright_server.streams.alerting.detect import main as detect_main

    raise typer.Exit(detect_main(ctx.args))


def main() -> None:
    app()
