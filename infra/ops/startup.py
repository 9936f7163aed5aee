"""Bringing the whole pipeline up, step by step, and telling whether it is healthy."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from shiftright_server.infra.clickhouse import apply_schema
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.ops.supervisor import (
    SCALED,
    Component,
    Supervisor,
    kafka_launcher,
    python_components,
    start_rank,
    warehouse_ready,
)
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics


def _then(step: Callable[[], object], line: str) -> Callable[[], str]:
    """Run ``step``, then answer ``line`` (what the console prints for it)."""

    def run() -> str:
        step()
        return line

    return run


def bring_up(settings: Settings, console: Console, *, simulate: bool, rate: float) -> None:
    """Start everything in order; each step prints one line as it completes."""
    sup = Supervisor(settings)
    comps = python_components(settings, ["--rate", str(rate)])
    steps: list[tuple[str, Callable[[], str]]] = [
        ("Kafka", lambda: _kafka(settings, sup)),
        ("Warehouse", lambda: _warehouse(settings, sup)),
        ("Topics", _then(lambda: create_topics(settings), "15 topics ready")),
        (
            "Schema",
            _then(
                lambda: apply_schema(settings),
                f"database {settings.clickhouse.database} migrated",
            ),
        ),
        ("Alert rules", lambda: starter_rules(settings)),
        ("Stream workers", lambda: _start_all(sup, comps, "streams")),
        ("ClickHouse sink", lambda: _start_all(sup, comps, "sink")),
        ("Notifier", lambda: f"pid {sup.start(comps['notifier'])} (e-mail, webhook, Slack)"),
        ("Ingest gateway", lambda: _gateway(settings, sup, comps["gateway"])),
        ("Dashboard", lambda: _dashboard(settings, sup, comps["dashboard"])),
    ]
    if simulate:
        steps.append(
            ("Simulator", lambda: f"pid {sup.start(comps['simulator'])} at ~{rate:g} events/s")
        )
    for title, step in steps:
        with console.status(f"{title}…"):
            detail = step()
        console.print(f"[green]✓[/] {title:<16} {detail}")
    _check_alive(
        sup,
        [name for name in comps if name != "warehouse" and (simulate or name != "simulator")],
    )


def _start_all(sup: Supervisor, comps: dict[str, Component], kind: str) -> str:
    """Start every instance of ``kind``; one line names their pids."""
    pids = [sup.start(c) for name, c in comps.items() if name.partition("-")[0] == kind]
    return f"pid {pids[0]}" if len(pids) == 1 else f"{len(pids)} processes, pids {pids}"


EXAMPLE_RULES = "infra/examples/alerts.yaml"


def starter_rules(settings: Settings) -> str:
    """On a first start, the example rules (not its subscriptions, which point at
    receivers that do not exist here) so alerts show up in the ``alerts`` table at once;
    a team's own rules, once applied, are never touched."""
    from importlib import resources

    from shiftright_server.infra.alerting_config import ConfigStore

    store = ConfigStore(
        settings.kafka.bootstrap_servers,
        topics.named(topics.ALERTING_CONFIG, settings.namespace),
    )
    current = store.read()
    if current.version:
        return (
            f"version {current.version} ({len(current.rules.rules)} rules, by {current.applied_by})"
        )
    example = (resources.files("shiftright_server.infra") / "examples" / "alerts.yaml").read_text()
    text = example.split("\nsubscriptions:")[0] + "\n"
    text = text.replace(
        "# An example alerting rule file",
        "# Starter rules applied by `shiftright up` (subscriptions left out) from an example file",
    )
    applied = store.apply(text, "shiftright up", EXAMPLE_RULES)
    return (
        f"{len(applied.rules.rules)} starter rules applied (version 1); "
        "yours: shiftright rules apply FILE"
    )


def _kafka(settings: Settings, sup: Supervisor) -> str:
    if not settings.kafka.launch_local:
        return f"using existing cluster {settings.kafka.bootstrap_servers}"
    if sup.pid("kafka"):
        return f"already running at {settings.kafka.bootstrap_servers}"
    launcher = kafka_launcher(settings)
    launcher.launch()  # says so itself when it first resolves the jars from Maven Central
    return f"Apache Kafka {settings.kafka.version} at {launcher.bootstrap}"


def _warehouse(settings: Settings, sup: Supervisor) -> str:
    url = settings.clickhouse.http_url
    if not settings.clickhouse.launch_local:
        if not warehouse_ready(url):
            raise RuntimeError(f"ClickHouse at {url} does not answer /ping")
        return f"using ClickHouse at {url}"
    comps = python_components(settings)
    sup.start(comps["warehouse"])
    sup.wait_until("warehouse", lambda: warehouse_ready(url), timeout=60)
    return f"embedded ClickHouse (chDB) at {url}"


def gateway_url(settings: Settings) -> str:
    return f"http://{settings.gateway.host}:{settings.gateway.port}"


def _gateway_ready(settings: Settings) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{gateway_url(settings)}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _gateway(settings: Settings, sup: Supervisor, component: Component) -> str:
    pid = sup.start(component)
    sup.wait_until("gateway", lambda: _gateway_ready(settings), timeout=60)
    return (
        f"pid {pid} at {gateway_url(settings)} "
        "(HTTP JSON + OTLP; a key: shiftright gateway keys create --app NAME)"
    )


def dashboard_ready(settings: Settings) -> bool:
    """The dashboard serves its files (pages may need a permission; its files do not)."""
    import urllib.request

    try:
        url = f"{settings.dashboard.url}/static/dashboard.css"
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _dashboard(settings: Settings, sup: Supervisor, component: Component) -> str:
    pid = sup.start(component)
    sup.wait_until("dashboard", lambda: dashboard_ready(settings), timeout=60)
    return f"pid {pid} at {settings.dashboard.url}"


def _check_alive(sup: Supervisor, names: list[str]) -> None:
    import time

    time.sleep(2.0)  # a component that cannot start usually dies within a second or two
    for name in names:
        if sup.pid(name) is None:
            raise RuntimeError(f"{name} exited right after start:\n{sup.tail(name)}")


def component_health(settings: Settings) -> list[tuple[str, bool, str]]:
    """(name, healthy, detail) for each component."""
    from shiftright_server.infra.ops.status import run_counters

    sup = Supervisor(settings)
    rows: list[tuple[str, bool, str]] = []
    if settings.kafka.launch_local:
        pid = sup.pid("kafka")
        rows.append(
            (
                "kafka",
                pid is not None,
                f"pid {pid} · {settings.kafka.bootstrap_servers}" if pid else "not running",
            )
        )
    else:
        rows.append(("kafka", True, f"external {settings.kafka.bootstrap_servers}"))
    url = settings.clickhouse.http_url
    ok = warehouse_ready(url)
    rows.append(("warehouse", ok, f"{url} {'answers' if ok else 'does not answer'} /ping"))
    running = set(sup.started())
    scaled = [n for n in running if n.partition("-")[0] in SCALED and "-" in n]
    names = ["streams", "sink", "notifier", "gateway", "dashboard", "simulator", *scaled]
    for name in sorted(set(names), key=start_rank):
        pid = sup.pid(name)
        detail = f"pid {pid}" if pid else "not running"
        if name == "gateway" and pid:
            ready = _gateway_ready(settings)
            detail += f" · {gateway_url(settings)} " + ("ready" if ready else "not ready")
        if name == "dashboard" and pid:
            ready = dashboard_ready(settings)
            detail += f" · {settings.dashboard.url} " + ("ready" if ready else "not ready")
        if name == "notifier" and pid:
            c = run_counters(settings, "notifier")
            if c:
                detail += (
                    f" · rules v{c.get('config_version', 0)} · delivered {c.get('delivered', 0):,}"
                    f" · failed {c.get('failed', 0)} · pending {c.get('pending', 0)}"
                )
        if name.partition("-")[0] == "sink" and pid:
            c = run_counters(settings, name)
            detail += f" · batches {c.get('batches', 0):,} · retries {c.get('retries', 0)}"
            if c.get("last_error"):
                detail += f" · last error: {c['last_error'][:80]}"
        rows.append((name, pid is not None or name == "simulator", detail))
    return rows
