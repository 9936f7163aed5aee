"""Bringing the whole pipeline up, step by step, and telling whether it is healthy."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from shiftright_server.infra.settings import Settings
from shiftright_server.infra.supervisor import (
    Component,
    Supervisor,
    kafka_launcher,
    python_components,
    warehouse_ready,
)
from shiftright_server.schemas import topics


def topic_plan(settings: Settings) -> tuple[dict[str, int], dict[str, int]]:
    """(raw event topics, derived topics) with their partition counts."""
    ns, parts = settings.namespace, settings.kafka.partitions
    raw = {topics.named(t, ns): parts for t in topics.EVENT_TOPICS}
    derived = {topics.named(t, ns): parts for t in (topics.DLQ_EVENTS, topics.ROLLUPS)}
    return raw, derived


def create_topics(settings: Settings) -> None:
    from shiftright_server.infra.kafka.topics import ensure_topics

    raw, derived = topic_plan(settings)
    bootstrap = settings.kafka.bootstrap_servers
    ensure_topics(bootstrap, raw, {"max.message.bytes": str(topics.RAW_TOPIC_MAX_MESSAGE_BYTES)})
    ensure_topics(bootstrap, derived)
    errors, compacted = error_topic_plan(settings)
    ensure_topics(bootstrap, errors)
    ensure_topics(bootstrap, compacted, {"cleanup.policy": "compact"})
    plain, config = alerting_topic_plan(settings)
    ensure_topics(bootstrap, plain)
    ensure_topics(bootstrap, config, {"cleanup.policy": "compact", "retention.ms": "-1"})


def alerting_topic_plan(settings: Settings) -> tuple[dict[str, int], dict[str, int]]:
    """Alerting topics (issue 5): signals are partitioned like the events; alerts and
    notifications are few and read in order by one notifier, so one partition each; the
    configuration is one compacted partition that is never deleted."""
    ns, parts = settings.namespace, settings.kafka.partitions
    plain = {topics.named(topics.SIGNALS, ns): parts}
    plain |= {topics.named(t, ns): 1 for t in (topics.ALERTS, topics.NOTIFICATIONS)}
    return plain, {topics.named(topics.ALERTING_CONFIG, ns): 1}


def error_topic_plan(settings: Settings) -> tuple[dict[str, int], dict[str, int]]:
    """Error-analytics topics (issue 4); ``errors.byhost.v1`` must have as many partitions
    as ``events.health.v1`` (the two are joined partition by partition). The group rows
    are compacted: the latest row per group is what matters."""
    ns, parts = settings.namespace, settings.kafka.partitions
    plain = (
        topics.ERRORS_BY_HOST,
        topics.ERRORS_GROUPED,
        topics.ERRORS_TRANSITIONS,
        topics.ERRORS_COMMANDS,
    )
    return {topics.named(t, ns): parts for t in plain}, {
        topics.named(topics.ERRORS_GROUPS, ns): parts
    }


def apply_schema(settings: Settings) -> None:
    from shiftright_server.infra.clickhouse import get_client
    from shiftright_server.schemas.migrate import migrate

    migrate(get_client(settings.clickhouse), settings.clickhouse.database)


def bring_up(settings: Settings, console: Console, *, simulate: bool, rate: float) -> None:
    """Start everything in order; each step prints one line as it completes."""
    sup = Supervisor(settings)
    comps = python_components(settings, ["--rate", str(rate)])
    steps: list[tuple[str, Callable[[], str]]] = [
        ("Kafka", lambda: _kafka(settings, sup)),
        ("Warehouse", lambda: _warehouse(settings, sup)),
        ("Topics", lambda: (create_topics(settings), "15 topics ready")[1]),
        (
            "Schema",
            lambda: (apply_schema(settings), f"database {settings.clickhouse.database} migrated")[
                1
            ],
        ),
        ("Alert rules", lambda: starter_rules(settings)),
        ("Stream workers", lambda: f"pid {sup.start(comps['streams'])}"),
        ("ClickHouse sink", lambda: f"pid {sup.start(comps['sink'])}"),
        ("Notifier", lambda: f"pid {sup.start(comps['notifier'])} (e-mail, webhook, Slack)"),
        ("Ingest gateway", lambda: _gateway(settings, sup, comps["gateway"])),
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
        sup, ["streams", "sink", "notifier", "gateway"] + (["simulator"] if simulate else [])
    )


EXAMPLE_RULES = "infra/examples/alerts.yaml"


def starter_rules(settings: Settings) -> str:
    """On a first start, the example rules (not its subscriptions, which point at
    receivers that do not exist here) so alerts show up in the ``alerts`` table at once;
    a team's own rules, once applied, are never touched."""
    from importlib import resources

    from shiftright_server.streams.alerting.store import ConfigStore

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


def _check_alive(sup: Supervisor, names: list[str]) -> None:
    import time

    time.sleep(2.0)  # a component that cannot start usually dies within a second or two
    for name in names:
        if sup.pid(name) is None:
            raise RuntimeError(f"{name} exited right after start:\n{sup.tail(name)}")


def component_health(settings: Settings) -> list[tuple[str, bool, str]]:
    """(name, healthy, detail) for each component."""
    from shiftright_server.infra.status import run_counters, sink_counters

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
    for name in ("streams", "sink", "notifier", "gateway", "simulator"):
        pid = sup.pid(name)
        detail = f"pid {pid}" if pid else "not running"
        if name == "gateway" and pid:
            ready = _gateway_ready(settings)
            detail += f" · {gateway_url(settings)} " + ("ready" if ready else "not ready")
        if name == "notifier" and pid:
            c = run_counters(settings, "notifier")
            if c:
                detail += (
                    f" · rules v{c.get('config_version', 0)} · delivered {c.get('delivered', 0):,}"
                    f" · failed {c.get('failed', 0)} · pending {c.get('pending', 0)}"
                )
        if name == "sink" and pid:
            c = sink_counters(settings)
            detail += f" · batches {c.get('batches', 0):,} · retries {c.get('retries', 0)}"
            if c.get("last_error"):
                detail += f" · last error: {c['last_error'][:80]}"
        rows.append((name, pid is not None or name == "simulator", detail))
    return rows
