"""``shiftright rules|silence|snooze|alerts|backtest``: alerting managed as code.

The rule file, its version history and the silences live in the compacted topic
``alerting.config.v1`` (:mod:`streams.alerting.store`); alert history and rollups are
read from the warehouse. The first half of this module is the framework-free part the
HTTP API (:mod:`infra.alerts_api`) shares; the second half is the typer commands.
"""

from __future__ import annotations

import getpass
import secrets
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Protocol

import typer
from rich.console import Console
from rich.table import Table
from shiftright_server.infra.cli_common import cli_settings as _settings
from shiftright_server.infra.cli_common import fail as _fail
from shiftright_server.infra.cli_common import parse_time
from shiftright_server.infra.cli_common import warehouse_client as _client
from shiftright_server.schemas.alerts import (
    AlertTransition,
    AnomalyRule,
    ErrorGroupRule,
    Matcher,
    Rule,
    RuleFile,
    Silence,
    parse_duration,
)
from shiftright_server.streams.alerting.loader import Change, RuleFileError, diff, load_rules

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings
    from shiftright_server.producers.gateway.keys import KeyStore
    from shiftright_server.schemas.records import Rollup
    from shiftright_server.streams.alerting.store import AlertingConfig

out = Console()
err = Console(stderr=True)

#: Exit code of a rule file (or matcher, duration …) that does not validate.
INVALID = 2


# == shared with the HTTP API (no web framework, no rich) ===================================
class AlertingStore(Protocol):
    """What the CLI and the API need of the configuration store (``ConfigStore``)."""

    def read(self) -> AlertingConfig: ...
    def apply(self, text: str, author: str, source: str = "") -> AlertingConfig: ...
    def add_silence(self, silence: Silence) -> None: ...
    def delete_silence(self, silence_id: str) -> None: ...


def open_store(settings: Settings) -> AlertingStore:
    from shiftright_server.schemas import topics
    from shiftright_server.streams.alerting.store import ConfigStore

    topic = topics.named(topics.ALERTING_CONFIG, settings.namespace)
    return ConfigStore(settings.kafka.bootstrap_servers, topic)


def tokens_path(settings: Settings) -> Path:
    """API tokens of the alerting API (see :mod:`infra.alerts_api`)."""
    return settings.resolved_state_dir() / "alerting" / "api-tokens.sqlite"


def open_tokens(settings: Settings) -> KeyStore:
    from shiftright_server.producers.gateway.keys import KeyStore

    return KeyStore(tokens_path(settings))


ROLES = ("viewer", "editor")


def parse_rules(text: str, source: str) -> RuleFile:
    """:func:`load_rules` (every problem, syntax included, by line and field)."""
    return load_rules(text, source)


def change_json(c: Change) -> dict[str, Any]:
    return {"op": c.op, "what": c.what, "name": c.name, "fields": list(c.fields)}


def rule_summary(rule: Rule) -> dict[str, Any]:
    """One rule as ``rules list`` and ``GET /rules`` show it."""
    return {
        "name": rule.name,
        "kind": rule.kind,
        "app": rule.scope.app,
        "env": rule.scope.env,
        "source": rule.scope.source,
        "severity": rule.severity,
        "for": rule.for_,
        "enabled": rule.enabled,
        "description": rule.description,
    }


class SilenceError(ValueError):
    """A silence that cannot be made (bad matcher, duration or times)."""


def make_silence(
    matchers: Iterable[str],
    duration: str | float | None,
    comment: str,
    created_by: str,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    now: datetime | None = None,
) -> Silence:
    """A new silence with a generated id; :class:`SilenceError` says what is wrong."""
    now = now or datetime.now(UTC)
    parsed: list[Matcher] = []
    for text in matchers:
        try:
            parsed.append(Matcher.model_validate(text))
        except ValueError as exc:
            raise SilenceError(_first_error(exc)) from None
    if not parsed:
        raise SilenceError("a silence needs at least one matcher, e.g. --match app=checkout")
    start = starts_at or now
    if ends_at is None:
        if duration is None:
            raise SilenceError("say how long: a duration such as 2h (or an end time)")
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise SilenceError(str(exc)) from None
        if seconds <= 0:
            raise SilenceError("the duration must be more than 0")
        ends_at = start + timedelta(seconds=seconds)
    if ends_at <= now:
        raise SilenceError("the silence would already be over")
    try:
        return Silence(
            id=secrets.token_hex(5),
            matchers=parsed,
            starts_at=start,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
        )
    except ValueError as exc:
        raise SilenceError(_first_error(exc)) from None


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first["msg"]).removeprefix("Value error, ")
    return str(exc)


@dataclass(frozen=True)
class SilenceView:
    silence: Silence
    origin: str  # "file": written in the rule file; "api": made by the CLI or the API
    state: str  # active, upcoming, expired

    def as_json(self) -> dict[str, Any]:
        s = self.silence
        return {
            "id": s.id,
            "matchers": [str(m) for m in s.matchers],
            "starts_at": s.starts_at.isoformat(),
            "ends_at": s.ends_at.isoformat(),
            "created_by": s.created_by,
            "comment": s.comment,
            "origin": self.origin,
            "state": self.state,
        }


def silences_of(config: AlertingConfig, now: datetime, expired: bool = False) -> list[SilenceView]:
    """Active and upcoming silences (all with ``expired``), the soonest to end first."""
    from_file = {s.id for s in config.rules.silences}
    views = []
    for s in config.all_silences():
        state = "active" if s.active(now) else "upcoming" if s.starts_at > now else "expired"
        if state == "expired" and not expired:
            continue
        origin = "file" if s.id in from_file and s.id not in config.silences else "api"
        views.append(SilenceView(s, origin, state))
    return sorted(views, key=lambda v: (v.state != "active", v.silence.ends_at, v.silence.id))


class SilenceNotFound(LookupError):
    pass


class SilenceInFile(ValueError):
    pass


def delete_silence(store: AlertingStore, silence_id: str) -> Silence:
    """Delete a silence made by the CLI or the API; file silences are removed by editing
    the file (an apply would bring them back otherwise)."""
    config = store.read()
    if silence_id in config.silences:
        store.delete_silence(silence_id)
        return config.silences[silence_id]
    if any(s.id == silence_id for s in config.rules.silences):
        raise SilenceInFile(
            f"silence {silence_id} is written in the rule file (version {config.version}); "
            "remove it there and apply the file"
        )
    raise SilenceNotFound(f"no silence {silence_id}")


# -- the warehouse: alerts and rollups ----------------------------------------------------
_ALERT_COLUMNS = "rule, fingerprint, state, labels, annotations, starts_at, active_since, value, threshold, updated_at"


def _where(filters: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``labels['app'] = …`` conditions for the given (non-empty) label filters."""
    wanted = {k: v for k, v in filters.items() if v}
    cond = " AND ".join(f"labels[{{k_{k}:String}}] = {{v_{k}:String}}" for k in wanted) or "1"
    params = {f"k_{k}": k for k in wanted} | {f"v_{k}": v for k, v in wanted.items()}
    return cond, params


def current_alerts(client: Any, app: str = "", env: str = "") -> list[dict[str, Any]]:
    """Alerts firing or pending now (``alerts_current``), firing first, oldest first."""
    cond, params = _where({"app": app, "env": env})
    sql = (
        f"SELECT {_ALERT_COLUMNS} FROM alerts_current WHERE {cond} "
        "ORDER BY state = 'firing' DESC, starts_at, active_since, rule, fingerprint"
    )
    return _rows(client.query(sql, parameters=params))


def alert_history(
    client: Any,
    app: str = "",
    env: str = "",
    rule: str = "",
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Recent transitions from ``alerts``, newest first."""
    cond, params = _where({"app": app, "env": env})
    extra = ""
    if rule:
        extra += " AND rule = {rule:String}"
        params["rule"] = rule
    if since is not None:
        extra += " AND ts >= {since:DateTime64(3)}"
        params["since"] = since  # type: ignore[assignment]
    sql = (
        "SELECT ts, rule, rule_kind, fingerprint, previous, state, labels, value, threshold, "
        f"starts_at, ends_at, seq FROM alerts FINAL WHERE {cond}{extra} "
        "ORDER BY ts DESC, rule, fingerprint, seq DESC LIMIT {limit:UInt32}"
    )
    return _rows(client.query(sql, parameters={**params, "limit": limit}))


def _rows(result: Any) -> list[dict[str, Any]]:
    return [
        {k: _utc(v) for k, v in zip(result.column_names, row, strict=True)}
        for row in result.result_rows
    ]


def _utc(value: Any) -> Any:
    """Warehouse times are UTC; some clients hand them over without a zone."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


_ROLLUP_COLUMNS = (
    "app, env, kind, key, bucket_start, bucket_seconds, count, sums, mins, maxs, "
    "first_ts, last_ts, source_partition, emitted_at"
)


def rollup_query(rule: Rule, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    """The closed rollups a rule watches between ``start`` and ``end`` (SQL, parameters)."""
    from shiftright_server.streams.alerting.measures import KEY_LABEL

    scope = rule.scope
    cond = [
        "kind = {kind:String}",
        "bucket_start >= {start:DateTime64(3)}",
        "bucket_start < {end:DateTime64(3)}",
    ]
    params: dict[str, Any] = {"kind": scope.source, "start": start, "end": end}
    for name, value in (("app", scope.app), ("env", scope.env)):
        if value != "*":
            cond.append(f"{name} = {{{name}:String}}")
            params[name] = value
    for name, value in scope.filters.items():
        if name in ("key", KEY_LABEL[scope.source]):
            cond.append("key = {key:String}")
            params["key"] = value
    where = " AND ".join(cond)
    return f"SELECT {{cols}} FROM rollups FINAL WHERE {where}", params


def read_rollups(
    client: Any,
    rule: Rule,
    start: datetime,
    end: datetime,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[Rollup]:
    """The rollups :func:`rollup_query` selects, in bucket order; ``progress(done, total)``
    after each block read."""
    from shiftright_server.schemas.records import Rollup

    sql, params = rollup_query(rule, start, end)
    total = int(client.query(sql.replace("{cols}", "count()"), parameters=params).result_rows[0][0])
    progress(0, total)
    names = [c.strip() for c in _ROLLUP_COLUMNS.split(",")]
    found: list[Rollup] = []
    ordered = sql.replace("{cols}", _ROLLUP_COLUMNS) + " ORDER BY bucket_start, app, env, key"
    with client.query_row_block_stream(ordered, parameters=params) as blocks:
        for block in blocks:
            for row in block:
                found.append(Rollup(**{n: _utc(v) for n, v in zip(names, row, strict=True)}))
            progress(len(found), max(total, len(found)))
    return found


def warmup_for(rule: Rule) -> timedelta:
    """History read before the period so the rule starts the period as the stream would
    (windows full, baselines known; an anomaly detector past its warm-up points)."""
    from shiftright_server.streams.alerting.series import keep_seconds

    seconds = keep_seconds(rule) + rule.for_
    if isinstance(rule, AnomalyRule):  # its seasonal profile learns the hours of a week
        seconds = max(seconds, 7 * 86400.0)
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Episode:
    """One firing of one alert: from firing to resolved (None: still firing at the end)."""

    labels: dict[str, str]
    fired: datetime
    resolved: datetime | None
    value: float | None  # the value when it fired


def episodes(transitions: Iterable[AlertTransition]) -> list[Episode]:
    """Firing episodes with the labels of their series, in the order they fired."""
    open_: dict[str, AlertTransition] = {}
    done: list[Episode] = []
    for t in transitions:
        if t.state == "firing":
            open_[t.fingerprint] = t
        elif t.state == "resolved" and t.fingerprint in open_:
            f = open_.pop(t.fingerprint)
            done.append(Episode(dict(f.labels), f.ts, t.ts, f.value))
    done += [Episode(dict(f.labels), f.ts, None, f.value) for f in open_.values()]
    return sorted(done, key=lambda e: (e.fired, sorted(e.labels.items())))


def run_backtest(
    rule: Rule, rollups: list[Rollup], since: datetime, until: datetime | None
) -> list[Episode]:
    """Episodes of ``rule`` over ``rollups`` that were firing at some point after ``since``."""
    from shiftright_server.streams.alerting.backtest import backtest

    found = episodes(backtest([rule.model_copy(update={"enabled": True})], rollups, until=until))
    return [e for e in found if e.resolved is None or e.resolved > since]


# == the commands ===========================================================================
rules_app = typer.Typer(no_args_is_help=True, help="Alert rules as code: test, apply, list.")
silence_app = typer.Typer(no_args_is_help=True, help="Mute notifications of matching alerts.")
alerts_app = typer.Typer(
    invoke_without_command=True,
    help="Alerts firing or pending now (--history: recent transitions); API tokens.",
)
tokens_app = typer.Typer(no_args_is_help=True, help="Tokens for the alerting HTTP API.")
alerts_app.add_typer(tokens_app, name="tokens")


def _warehouse_problem(settings: Settings, exc: Exception) -> str:
    text = str(exc).strip()
    if "Connection refused" in text or "Max retries" in text:
        return f"cannot reach the warehouse at {settings.clickhouse.http_url} (shiftright status)"
    return text.splitlines()[0] if text else repr(exc)


def _abort(message: str) -> NoReturn:
    _fail(message)  # prints and exits 1
    raise typer.Exit(1)


def _store(settings: Settings) -> AlertingStore:
    return open_store(settings)


def _read(store: AlertingStore) -> AlertingConfig:
    from shiftright_server.streams.alerting.store import ConfigStoreError

    try:
        return store.read()
    except ConfigStoreError as exc:
        _abort(f"{exc} (is Kafka up? shiftright status)")


def _interactive() -> bool:
    """Ask before applying only when someone can answer."""
    return sys.stdin.isatty()


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name (some containers)
        return "unknown"


def _invalid(exc: RuleFileError) -> NoReturn:
    for line in str(exc).splitlines():
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    n = len(exc.problems)
    err.print(f"[bold red]{n} problem{'s' if n != 1 else ''}[/]: nothing applied")
    raise typer.Exit(INVALID)


def _load(path: Path) -> tuple[str, RuleFile]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        _abort(f"cannot read {path}: {exc.strerror or exc}")
    try:
        return text, parse_rules(text, str(path))
    except RuleFileError as exc:
        _invalid(exc)


def _counts(rules: RuleFile) -> str:
    parts = [
        (len(rules.rules), "rule"),
        (len(rules.subscriptions), "subscription"),
        (len(rules.silences), "silence"),
    ]
    return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in parts)


_OPS = {"+": ("green", "added"), "-": ("red", "removed"), "~": ("yellow", "changed")}


def print_diff(changes: list[Change], console: Console = out) -> None:
    if not changes:
        console.print("[dim]no changes to rules, subscriptions, silences or inhibition[/]")
        return
    table = Table("", "what", "name", "changed fields", box=None, pad_edge=False)
    for c in changes:
        colour, _ = _OPS[c.op]
        table.add_row(f"[{colour}]{c.op}[/]", c.what, f"[{colour}]{c.name}[/]", ", ".join(c.fields))
    console.print(table)
    tally = {word: sum(1 for c in changes if c.op == op) for op, (_, word) in _OPS.items()}
    console.print(", ".join(f"{n} {word}" for word, n in tally.items() if n))


def _applied_line(config: AlertingConfig) -> str:
    if not config.version:
        return "nothing applied yet"
    at = f"{config.applied_at:%Y-%m-%d %H:%M:%S} UTC" if config.applied_at else "?"
    src = f" from {config.source}" if config.source else ""
    return f"version {config.version}, applied by {config.applied_by or '?'} at {at}{src}"


@rules_app.command("test")
def rules_test(
    file: Annotated[Path, typer.Argument(help="The rule file (YAML).")],
) -> None:
    """Validate a rule file without applying it (exit 0 valid, 2 invalid)."""
    _, rules = _load(file)
    out.print(f"{file}: [green]valid[/] — {_counts(rules)}")


@rules_app.command("apply")
def rules_apply(
    file: Annotated[Path, typer.Argument(help="The rule file (YAML).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff; apply nothing.")
    ] = False,
    author: Annotated[str, typer.Option(help="Who applies (default: your user name).")] = "",
) -> None:
    """Validate FILE, show what it changes against the applied version, and apply it."""
    from shiftright_server.streams.alerting.store import ConfigStoreError

    text, rules = _load(file)
    store = _store(_settings())
    current = _read(store)
    out.print(f"[bold]{file}[/] ({_counts(rules)}) against {_applied_line(current)}")
    print_diff(diff(current.rules, rules))
    if current.version and text == current.text:
        out.print(f"identical to version {current.version}: nothing to apply")
        return
    if dry_run:
        out.print("[dim]dry run: nothing applied[/]")
        return
    if not yes and _interactive() and not typer.confirm("Apply?", default=False):
        out.print("nothing applied")
        raise typer.Exit(1)
    try:
        applied = store.apply(text, author or _actor(), str(file))
    except ConfigStoreError as exc:
        _abort(str(exc))
    out.print(f"[green]applied[/] version [bold]{applied.version}[/] by {applied.applied_by}")


@rules_app.command("list")
def rules_list() -> None:
    """The applied rules and subscriptions, and which version is applied."""
    config = _read(_store(_settings()))
    out.print(_applied_line(config))
    if not config.version:
        out.print("apply a rule file: shiftright rules apply rules.yaml")
        return
    table = Table(
        "name", "kind", "app", "env", "source", "severity", "for", "enabled", title="rules"
    )
    for rule in config.rules.rules:
        s = rule_summary(rule)
        table.add_row(
            s["name"],
            s["kind"],
            s["app"],
            s["env"],
            s["source"],
            _severity(s["severity"]),
            _seconds(s["for"]),
            "yes" if s["enabled"] else "[dim]no[/]",
        )
    out.print(table)
    subs = Table("name", "channel", "to", "matchers", "rules", "resolved", title="subscriptions")
    for sub in config.rules.subscriptions:
        subs.add_row(
            sub.name,
            sub.channel,
            sub.to,
            ", ".join(str(m) for m in sub.matchers) or "(all)",
            ", ".join(sub.rules) or "(any)",
            "yes" if sub.send_resolved else "no",
        )
    out.print(subs)
    out.print(
        f"[dim]{_counts(config.rules)}; silences made outside the file: "
        f"{len(config.silences)} (shiftright silence list)[/]"
    )


@rules_app.command("show")
def rules_show() -> None:
    """Print the applied rule file, as applied (redirect it to a file to edit it)."""
    config = _read(_store(_settings()))
    if not config.version:
        err.print("nothing applied yet")
        raise typer.Exit(1)
    err.print(f"# {_applied_line(config)}", markup=False, highlight=False)
    sys.stdout.write(config.text if config.text.endswith("\n") else config.text + "\n")


def _severity(severity: str) -> str:
    colour = {"critical": "red", "warning": "yellow"}.get(severity, "blue")
    return f"[{colour}]{severity}[/]"


def _seconds(value: float) -> str:
    value = int(value)
    if not value:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if value >= size:
            parts.append(f"{value // size}{unit}")
            value %= size
    return "".join(parts[:2])


def _when(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return ""
    gap = (ts - now).total_seconds()
    rel = f"in {_seconds(gap)}" if gap > 0 else f"{_seconds(-gap)} ago"
    return f"{ts.astimezone(UTC).isoformat(sep=' ', timespec='seconds')[:19]} ({rel})"


# -- silences -------------------------------------------------------------------------------
By = Annotated[str, typer.Option("--by", help="Who silences (default: your user name).")]
Comment = Annotated[str, typer.Option("--comment", "-c", help="Why (shown with the silence).")]


def _add_silence(matchers: list[str], duration: str, comment: str, by: str, starts: str) -> Silence:
    from shiftright_server.streams.alerting.store import ConfigStoreError

    try:
        start = parse_time(starts) if starts else None
        silence = make_silence(matchers, duration, comment, by or _actor(), starts_at=start)
    except (SilenceError, typer.BadParameter) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(INVALID) from None
    try:
        _store(_settings()).add_silence(silence)
    except ConfigStoreError as exc:
        _abort(str(exc))
    return silence


@silence_app.command("add")
def silence_add(
    match: Annotated[
        list[str],
        typer.Option(
            "--match",
            "-m",
            help="name=value, name!=value, name=~regex, severity>=warning (repeatable; all must match).",
        ),
    ],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    comment: Comment = "",
    by: By = "",
    starts: Annotated[
        str, typer.Option("--starts", help="Start later: an ISO time (default now).")
    ] = "",
) -> None:
    """Mute notifications of alerts whose labels match, for a while (prints the id)."""
    silence = _add_silence(match, duration, comment, by, starts)
    typer.echo(silence.id)  # alone on stdout, for scripts
    err.print(
        f"silence {silence.id} on {', '.join(str(m) for m in silence.matchers)} "
        f"until {_when(silence.ends_at, datetime.now(UTC))}; "
        f"shiftright silence delete {silence.id} ends it",
        highlight=False,
    )


@silence_app.command("list")
def silence_list(
    expired: Annotated[bool, typer.Option("--expired", help="Also those that ended.")] = False,
) -> None:
    """Active and upcoming silences: made here or by the API, and those in the rule file."""
    config = _read(_store(_settings()))
    now = datetime.now(UTC)
    views = silences_of(config, now, expired)
    if not views:
        out.print("no active or upcoming silences")
        return
    table = Table("id", "state", "matchers", "starts", "ends", "by", "comment", "from")
    for v in views:
        s = v.silence
        colour = {"active": "green", "upcoming": "cyan"}.get(v.state, "dim")
        table.add_row(
            s.id,
            f"[{colour}]{v.state}[/]",
            ", ".join(str(m) for m in s.matchers),
            _when(s.starts_at, now),
            _when(s.ends_at, now),
            s.created_by,
            s.comment,
            "rule file" if v.origin == "file" else "cli/api",
        )
    out.print(table)


@silence_app.command("delete")
def silence_delete(silence_id: Annotated[str, typer.Argument(help="The silence's id.")]) -> None:
    """End a silence now (silences written in the rule file are removed there)."""
    from shiftright_server.streams.alerting.store import ConfigStoreError

    try:
        gone = delete_silence(_store(_settings()), silence_id)
    except (SilenceNotFound, SilenceInFile, ConfigStoreError) as exc:
        _abort(str(exc))
    out.print(f"deleted silence {gone.id} ({', '.join(str(m) for m in gone.matchers)})")


def snooze(
    rule: Annotated[str, typer.Argument(help="The rule's name.")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 1h, 1d.")],
    comment: Comment = "",
    by: By = "",
) -> None:
    """Mute one rule's notifications for a while (a silence on alertname)."""
    config = _read(_store(_settings()))
    names = [r.name for r in config.rules.rules]
    if rule not in names:
        known = ", ".join(names) or "none"
        _abort(f"no rule {rule!r} in the applied version {config.version} (rules: {known})")
    silence = _add_silence([f"alertname={rule}"], duration, comment, by, "")
    out.print(
        f"snoozed [bold]{rule}[/] until {_when(silence.ends_at, datetime.now(UTC))} "
        f"(silence {silence.id}; shiftright silence delete {silence.id} ends it)"
    )


# -- alerts -----------------------------------------------------------------------------
@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    history: Annotated[bool, typer.Option("--history", help="Recent transitions instead.")] = False,
    app: Annotated[str, typer.Option("--app", help="Only this app.")] = "",
    env: Annotated[str, typer.Option("--env", help="Only this environment.")] = "",
    rule: Annotated[str, typer.Option("--rule", help="With --history: only this rule.")] = "",
    since: Annotated[str, typer.Option(help="With --history: from 30m, 6h, 7d ago.")] = "7d",
    limit: Annotated[int, typer.Option(help="With --history: at most this many.")] = 50,
) -> None:
    """Alerts firing or pending now; --history for the recent transitions."""
    if ctx.invoked_subcommand is not None:
        return
    start = parse_time(since)
    settings = _settings()
    try:
        client = _client(settings)
        if history:
            rows = alert_history(client, app, env, rule, start, limit)
        else:
            rows = current_alerts(client, app, env)
    except Exception as exc:
        _abort(_warehouse_problem(settings, exc))
    now = datetime.now(UTC)
    if history:
        _print_history(rows, now)
    else:
        _print_current(rows, now)


_HIDDEN = {"alertname", "severity"}


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in _HIDDEN)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _print_current(rows: list[dict[str, Any]], now: datetime) -> None:
    if not rows:
        out.print("[green]no alerts firing or pending[/]")
        return
    table = Table("state", "rule", "severity", "labels", "value", "threshold", "since", "summary")
    for r in rows:
        since = r["starts_at"] if r["state"] == "firing" else r["active_since"]
        colour = "red" if r["state"] == "firing" else "yellow"
        table.add_row(
            f"[{colour}]{r['state']}[/]",
            r["rule"],
            _severity(r["labels"].get("severity", "")),
            _labels(r["labels"]),
            _num(r["value"]),
            _num(r["threshold"]),
            _when(since, now),
            r["annotations"].get("summary", ""),
        )
    out.print(table)
    firing = sum(1 for r in rows if r["state"] == "firing")
    out.print(f"{firing} firing, {len(rows) - firing} pending")


def _print_history(rows: list[dict[str, Any]], now: datetime) -> None:
    if not rows:
        out.print("no alert transitions in this period")
        return
    table = Table("time", "rule", "transition", "labels", "value", "threshold")
    colours = {"firing": "red", "pending": "yellow", "resolved": "green"}
    for r in rows:
        state = f"[{colours.get(r['state'], 'dim')}]{r['state']}[/]"
        table.add_row(
            _when(r["ts"], now),
            r["rule"],
            f"{r['previous']} → {state}",
            _labels(r["labels"]),
            _num(r["value"]),
            _num(r["threshold"]),
        )
    out.print(table)
    out.print(f"[dim]{len(rows)} transition{'s' if len(rows) != 1 else ''}, newest first[/]")


# -- API tokens -------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help="viewer (read only) or editor (may change).")],
    label: Annotated[str, typer.Option(help="Who or what uses the token.")] = "",
) -> None:
    """A token for the alerting API; printed once, stored only as a hash."""
    if role not in ROLES:
        err.print(f"[bold red]error:[/] --role must be one of {', '.join(ROLES)}")
        raise typer.Exit(INVALID)
    token, key = open_tokens(_settings()).create(role, None, label)
    typer.echo(token)
    typer.echo(f"token {key.id}: {role}" + (f" ({label})" if label else ""), err=True)


@tokens_app.command("list")
def tokens_list() -> None:
    """Tokens, with their role and state (the tokens themselves are not stored)."""
    table = Table("id", "role", "label", "created", "state")
    for key in open_tokens(_settings()).list():
        state = f"[red]revoked {key.revoked_at}[/]" if key.revoked else "[green]active[/]"
        table.add_row(key.id, key.app, key.label, key.created_at, state)
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: refused from the next request on."""
    if not open_tokens(_settings()).revoke(token_id):
        _abort(f"no active token {token_id}")
    out.print(f"revoked {token_id}")


# -- backtest -----------------------------------------------------------------------------
def backtest_cmd(
    rule_name: Annotated[str, typer.Argument(metavar="RULE", help="The rule's name.")],
    since: Annotated[
        str, typer.Option(help="Start of the period: 6h, 7d, 30d ago, or an ISO time.")
    ] = "7d",
    until: Annotated[str, typer.Option(help="End of the period (default now).")] = "now",
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="Take the rule from this file instead of the applied version."
        ),
    ] = None,
    warmup: Annotated[
        str, typer.Option(help="History read before the period (default: what the rule needs).")
    ] = "",
) -> None:
    """Replay stored rollups through a rule: when would it have fired and resolved?"""
    settings = _settings()
    rules = _load(file)[1] if file else _read(_store(settings)).rules
    found = {r.name: r for r in rules.rules}
    if rule_name not in found:
        where = str(file) if file else "the applied rules"
        _abort(f"no rule {rule_name!r} in {where} (rules: {', '.join(found) or 'none'})")
    rule = found[rule_name]
    if isinstance(rule, ErrorGroupRule):
        _abort("error_group rules follow error-group transitions, not rollups: no backtest")
    now = datetime.now(UTC)
    try:
        start, end = parse_time(since, now), parse_time(until, now)
        lead = timedelta(seconds=parse_duration(warmup)) if warmup else warmup_for(rule)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(INVALID) from None
    if end <= start:
        _abort("--until must be after --since")
    rollups = _read_with_progress(settings, rule, start - lead, end)
    # the newest buckets of a live period are still being closed: stop the clock before them
    stop = min(end, now - timedelta(minutes=2))
    _print_episodes(rule, run_backtest(rule, rollups, start, stop), rollups, start, end, now)


def _read_with_progress(
    settings: Settings, rule: Rule, start: datetime, end: datetime
) -> list[Rollup]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("reading rollups"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            return read_rollups(_client(settings), rule, start, end, step)
        except Exception as exc:
            _abort(_warehouse_problem(settings, exc))


def _print_episodes(
    rule: Rule,
    found: list[Episode],
    rollups: list[Rollup],
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    period = f"{_when(start, now)} → {_when(end, now)}"
    scope = f"{rule.scope.app}/{rule.scope.env} {rule.scope.source}"
    out.print(f"[bold]{rule.name}[/] ({rule.kind}, {scope}) over {period}", highlight=False)
    out.print(f"[dim]{len(rollups):,} rollups read (with the warm-up before the period)[/]")
    if not rollups:
        out.print("[yellow]no rollups match the rule's scope in this period[/]")
        return
    if found:
        table = Table("fired", "resolved", "lasted", "labels", "value at firing")
        for e in found:
            before = " [dim](before the period)[/]" if e.fired < start else ""
            table.add_row(
                _when(e.fired, now) + before,
                _when(e.resolved, now) if e.resolved else "[red]still firing[/]",
                _seconds(((e.resolved or end) - e.fired).total_seconds()),
                _labels(e.labels),
                _num(e.value),
            )
        out.print(table)
    series = {tuple(sorted(e.labels.items())) for e in found}
    firing = sum(((e.resolved or end) - max(e.fired, start)).total_seconds() for e in found)
    still = sum(1 for e in found if e.resolved is None)
    out.print(
        f"would have fired [bold]{len(found)}[/] time{'s' if len(found) != 1 else ''} "
        f"on {len(series)} series, firing {_seconds(firing)} in all"
        + (f"; {still} still firing at the end" if still else "")
    )


def register(app: typer.Typer) -> None:
    """Add the alerting commands to the ``shiftright`` app."""
    app.add_typer(rules_app, name="rules")
    app.add_typer(silence_app, name="silence")
    app.add_typer(alerts_app, name="alerts")
    app.command("snooze")(snooze)
    app.command("backtest")(backtest_cmd)
