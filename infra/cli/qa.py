"""``shiftright qa untested|gaps|releases|unused|gate``: what to test next, what preprod
missed, release health, and the release gate for CI (the views of ``docs/qa.md``)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.common import fail as _fail
from shiftright_server.infra.cli.common import warehouse_client as _client
from shiftright_server.infra.cli.qa_gate import Thresholds, decide, markdown, record
from shiftright_server.schemas import qa_queries as q

qa_app = typer.Typer(no_args_is_help=True, help="QA meets production: what to test next.")
out = Console()

App = Annotated[str, typer.Option("--app", help="Only this app.")]
Days = Annotated[int, typer.Option(help="Prod usage of the last this many days.")]
Limit = Annotated[int, typer.Option(help="At most this many rows.")]


def _rows(query: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        result = _client(_settings()).query(query, parameters=params)
    except Exception as exc:
        _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        raise  # fail() has already exited
    return list(result.column_names), [tuple(r) for r in result.result_rows]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if value != value else f"{value:,.4g}"
    return escape(str(value))  # app-sent names are text, never rich markup


def _table(title: str, query: str, params: dict[str, Any], empty: str) -> None:
    columns, rows = _rows(query, params)
    if not rows:
        out.print(empty)
        return
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    out.print(table)


@qa_app.command()
def untested(app_name: App = "", days: Days = 30, limit: Limit = 50) -> None:
    """Features and routes customers used in prod, never-tested first: what to test next."""
    params = {"app": app_name, "days": days, "limit": limit}
    _table(f"Untested hot paths (prod, {days} d)", q.UNTESTED, params, "No prod usage.")


@qa_app.command()
def unused(app_name: App = "", days: Days = 30, limit: Limit = 50) -> None:
    """What tests exercise that no customer used in prod: candidates to prune or question."""
    params = {"app": app_name, "days": days, "limit": limit}
    _table(f"Tested but unused in prod ({days} d)", q.UNUSED, params, "Nothing tested is unused.")


@qa_app.command()
def gaps(app_name: App = "", days: Days = 30, limit: Limit = 50) -> None:
    """What preprod missed: features never exercised there before their release reached
    prod; error groups first seen in prod on a route preprod served, or seen in preprod first
    and still shipped (with the lead time)."""
    params = {"app": app_name, "days": days, "limit": limit}
    _table("Features not exercised in preprod", q.GAP_FEATURES, params, "No feature gaps.")
    _table("Error groups preprod missed or saw first", q.GAP_ERRORS, params, "No error gaps.")


@qa_app.command()
def releases(app_name: App = "", days: Days = 30, limit: Limit = 100) -> None:
    """Per release, preprod next to prod: error rate, p95, CPU and memory per request,
    and the change against the previous release (▲: worse)."""
    columns, rows = _rows(q.RELEASES, {"app": app_name, "days": days, "limit": limit})
    if not rows:
        out.print("No releases with requests.")
        return
    headers = ("app", "release", "env", "requests", "error rate", "p95 ms", "cpu ms/req")
    table = Table(*headers, "mem MB/req", "previous", title=f"Release health ({days} d)")
    for row in rows:
        r = dict(zip(columns, row, strict=True))
        table.add_row(
            escape(r["app"]),
            escape(r["release"]),
            r["env"],
            f"{r['requests']:,}",
            _versus(r, "error_rate", "{:.2%}"),
            _versus(r, "p95_ms", "{:.1f}"),
            _versus(r, "cpu_ms_per_request", "{:.2f}"),
            _versus(r, "memory_mb_per_request", "{:.3f}"),
            escape(r["previous_release"] or "–"),
        )
    out.print(table)


def _versus(r: dict[str, Any], key: str, fmt: str) -> str:
    now, then = r[key], r[f"previous_{key}"] if r["previous_release"] else None
    if now is None or now != now:
        return "–"
    text = fmt.format(now)
    if then is not None and then == then and now > then * 1.1 and now - then > 1e-9:
        return f"[red]{text} ▲[/]"
    return text


@qa_app.command()
def gate(
    app_name: Annotated[str, typer.Option("--app", help="The app.")],
    release: Annotated[str, typer.Option(help="The candidate release.")],
    env: Annotated[str, typer.Option(help="Where it runs.")] = "preprod",
    baseline: Annotated[str, typer.Option(help="Compare with (default: previous).")] = "",
    max_error_rate_increase: Annotated[float, typer.Option(help="0.01 = +1 pp.")] = 0.01,
    max_p95_increase: Annotated[float, typer.Option(help="0.2 = +20 %.")] = 0.2,
    min_requests: Annotated[int, typer.Option(help="Needed to judge rates.")] = 20,
    summary: Annotated[Path | None, typer.Option(help="Also append the Markdown here.")] = None,
    store: Annotated[bool, typer.Option("--record/--no-record", help="Store it.")] = True,
) -> None:
    """Pass (exit 0) or fail (exit 1) a release, with reasons, as Markdown for CI; the
    decision is stored as a change event (the dashboard's timeline shows it)."""
    limits = Thresholds(max_error_rate_increase, max_p95_increase, min_requests)
    client = _client(_settings())
    try:
        decision = decide(client, app_name, env, release, baseline, limits)
        if store:
            record(client, decision, _actor())
    except Exception as exc:
        _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return
    text = markdown(decision)
    print(text, end="")
    if summary is not None:
        with summary.open("a") as sink:
            sink.write(text)
    raise typer.Exit(0 if decision.passed else 1)


def _actor() -> str:
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:
        return ""
