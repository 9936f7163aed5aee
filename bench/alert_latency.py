"""``python -m bench.alert_latency``: how fast an incident becomes a notification.

    .venv/bin/python -m bench.alert_latency [--rate 10000] [--incidents 24] [--warmup 20]

Starts a broker and the embedded warehouse (as ``bench.pipeline`` does), then the stream
worker, the ClickHouse sink and the notifier of a fresh namespace, a webhook receiver
(HTTP on 127.0.0.1) and an SMTP server (aiosmtpd on 127.0.0.1). The simulator sends
``--rate`` requests/s of background traffic (flat, two apps in preprod and prod) while
``--incidents`` incidents are injected one by one, each in an app of its own in env
``bench`` so its alert is told apart:

* **error-spike**: 150 errors in ~0.3 s (threshold: > 50 errors in 10 s);
* **cpu-saturation**: a host reports CPU 0.99 (threshold: max CPU > 0.95);
* **latency-jump**: 60 requests at 4 s (threshold: mean duration > 2,000 ms over 10 s);
* **usage-drop**: a feature used 20 times a second stops (absence after 2 s);
* **new-error-group**: one exception of a type never seen before (error-group rule on
  ``new``; the error waits for its host's health — see ``streams.grouping.health``).

For each it measures from the first incident event handed to the producer (for a usage
drop: the last event before the silence) to the webhook request received and to the
e-mail accepted by the SMTP server, and prints p50/p99 per kind. The usage drop's figure
includes its 2 s ``after``; the figure without it is printed too. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from shiftright_server.infra.alerting_config import ConfigStore
from shiftright_server.infra.clickhouse import apply_schema
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.ops.supervisor import Supervisor, python_components
from shiftright_server.infra.settings import ClickHouseSettings, KafkaSettings, Settings
from shiftright_server.producers.emitter import Emitter
from shiftright_server.schemas import topics

from bench.pipeline import RESULTS, start_services
from tests.builders import event

INCIDENT_APP = re.compile(r"inc-\d\d")
KINDS = ("error-spike", "cpu-saturation", "latency-jump", "usage-drop", "new-error-group")
ABSENCE_AFTER_S = 2.0

RULES = """
rules:
  - name: bench-error-spike
    kind: threshold
    severity: critical
    scope: {{app: "*", env: bench, source: error, per_key: false}}
    measure: count
    aggregate: sum
    window: 10s
    op: ">"
    threshold: 50
  - name: bench-cpu-saturation
    kind: threshold
    scope: {{app: "*", env: bench, source: health}}
    measure: max:system.cpu.utilization
    aggregate: max
    window: 10s
    op: ">"
    threshold: 0.95
  - name: bench-latency-jump
    kind: threshold
    scope: {{app: "*", env: bench, source: usage}}
    measure: avg:duration_ms
    aggregate: last
    window: 10s
    op: ">"
    threshold: 2000
  - name: bench-new-error-group
    kind: error_group
    transitions: [new]
    scope: {{app: "*", env: bench}}
  - name: bench-usage-drop
    kind: absence
    after: {after}s
    scope: {{app: "*", env: bench, source: usage, filters: {{feature: heartbeat}}}}
subscriptions:
  - name: bench-hook
    channel: webhook
    to: {hook}
    matchers: ['env="bench"']
    group_by: [alertname, app]
    group_wait: 0s
    send_resolved: false
  - name: bench-mail
    channel: email
    to: oncall@example.com
    matchers: ['env="bench"']
    group_by: [alertname, app]
    group_wait: 0s
    send_resolved: false
"""


class Arrivals:
    """When the first firing notification for each incident app arrived, per channel."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: dict[tuple[str, str], float] = {}

    def seen(self, channel: str, apps: list[str]) -> None:
        now = time.monotonic()
        with self.lock:
            for app in apps:
                self.at.setdefault((channel, app), now)


def watch_transitions(
    bootstrap: str, topic: str, arrivals: Arrivals, stop: threading.Event
) -> None:
    """Records when each incident's firing transition reached ``alerts.v1`` (the stream's
    share of the latency; the rest is the notifier's)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            msg = consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            t = json.loads(msg.value() or b"")
            if t.get("state") == "firing":
                arrivals.seen("alerts.v1", [t["labels"].get("app", "")])
    finally:
        consumer.close()


def webhook_server(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            apps = [
                a["labels"].get("app", "")
                for a in body.get("alerts", [])
                if a.get("status") == "firing"
            ]
            arrivals.seen("webhook", apps)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def smtp_server(arrivals: Arrivals) -> Any:
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            msg = message_from_bytes(envelope.content)
            text = str(msg.get("Subject", "")) + " " + _plain(msg)
            arrivals.seen("email", sorted(set(INCIDENT_APP.findall(text))))
            return "250 OK"

    from tests.integration.warehouse_fixture import free_port

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


def _plain(msg: Any) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return str(part.get_payload(decode=True).decode("utf-8", "replace"))
    return ""


def inject(emitter: Emitter, kind: str, app: str) -> float:
    """Send one incident; returns the monotonic time its clock starts."""
    now = datetime.now(UTC)
    if kind == "error-spike":
        events = [
            event("error", now, app, "bench", exception_type="BenchError") for _ in range(150)
        ]
    elif kind == "cpu-saturation":
        events = [
            event(
                "health",
                now,
                app,
                "bench",
                host=f"{app}-1",
                metrics={"system.cpu.utilization": 0.99},
            )
        ]
    elif kind == "new-error-group":  # an exception never seen before, thrown once
        events = [
            event(
                "error",
                now,
                app,
                "bench",
                host=f"{app}-1",
                exception_type=f"BenchNew{app.replace('-', '')}Error",
            )
        ]
    elif kind == "latency-jump":
        events = [
            event("usage", now, app, "bench", name="pay", duration_ms=4000.0) for _ in range(60)
        ]
    else:
        raise ValueError(kind)
    started = time.monotonic()
    emitter.emit_many(events)
    emitter.flush(10)
    return started


def heartbeat(emitter: Emitter, app: str, seconds: float) -> float:
    """A feature used 20 times a second for ``seconds``, then never again; returns the
    monotonic time of the last use."""
    last = time.monotonic()
    deadline = last + seconds
    while time.monotonic() < deadline:
        emitter.emit_many([event("usage", datetime.now(UTC), app, "bench", name="heartbeat")])
        emitter.poll(0)
        last = time.monotonic()
        time.sleep(0.05)
    emitter.flush(10)
    return last


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=10_000.0, help="background requests/s")
    ap.add_argument("--incidents", type=int, default=25, help="incidents to inject (>= 5)")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds of traffic first")
    ap.add_argument(
        "--health-wait-ms",
        type=int,
        default=None,
        help="SHIFTRIGHT_STREAMS__HEALTH_MAX_WAIT_MS for the worker (default 15000)",
    )
    ap.add_argument("--kafka", default="", help="use this broker instead of starting one")
    ap.add_argument("--clickhouse", default="", help="use this warehouse URL")
    args = ap.parse_args(argv)
    console = Console(width=max(140, Console().width))
    with tempfile.TemporaryDirectory(prefix="sr-alert-") as tmp, contextlib.ExitStack() as stack:
        progress = stack.enter_context(
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
            )
        )
        services = start_services(args, Path(tmp), stack, progress)
        arrivals = Arrivals()
        hook = webhook_server(arrivals)
        stack.callback(hook.shutdown)
        smtp = smtp_server(arrivals)
        stack.callback(smtp.stop)
        ns = f"a{uuid.uuid4().hex[:8]}"
        settings = Settings.model_validate(
            {
                "state_dir": Path(tmp) / "state",
                "namespace": ns,
                "kafka": KafkaSettings(bootstrap=services.bootstrap),
                "clickhouse": ClickHouseSettings(url=services.clickhouse, database=ns),
                "alerting": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "smtp_from": "shiftright@example.com",
                },
                "streams": {}
                if args.health_wait_ms is None
                else {"health_max_wait_ms": args.health_wait_ms},
            }
        )
        create_topics(settings)
        apply_schema(settings)
        url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        ConfigStore(
            settings.kafka.bootstrap_servers, topics.named(topics.ALERTING_CONFIG, ns)
        ).apply(RULES.format(hook=url, after=ABSENCE_AFTER_S), "bench")
        stop_watch = threading.Event()
        watcher = threading.Thread(
            target=watch_transitions,
            daemon=True,
            args=(
                settings.kafka.bootstrap_servers,
                topics.named(topics.ALERTS, ns),
                arrivals,
                stop_watch,
            ),
        )
        watcher.start()
        stack.callback(watcher.join, 5)
        stack.callback(stop_watch.set)
        sup = Supervisor(settings)
        comps = python_components(settings, ["--rate", str(args.rate), "--flat"])
        for name in ("streams", "sink", "notifier", "simulator"):
            sup.start(comps[name])
            stack.callback(sup.stop, name, 20)
        task = progress.add_task(f"Warming up: {args.rate:,.0f} requests/s background", total=None)
        time.sleep(args.warmup)
        emitter = Emitter(settings.kafka.bootstrap_servers, ns)
        started: dict[str, tuple[str, float]] = {}
        for i in range(max(len(KINDS), args.incidents)):
            kind, app = KINDS[i % len(KINDS)], f"inc-{i:02d}"
            progress.update(task, description=f"Incident {i + 1}/{args.incidents}: {kind} ({app})")
            if kind == "usage-drop":
                started[app] = (kind, heartbeat(emitter, app, 3.0))
            else:
                started[app] = (kind, inject(emitter, kind, app))
            time.sleep(1.0)
        deadline = time.monotonic() + 60
        progress.update(task, description="Waiting for the last notifications")
        while time.monotonic() < deadline and len(arrivals.at) < 3 * len(started):
            time.sleep(0.2)
        emitter.flush(5)
        del emitter  # its client goes before the broker does
        for name in ("simulator", "notifier", "sink", "streams"):
            if not sup.pid(name):
                console.print(f"[red]{name} died:[/]\n{sup.tail(name, 15)}")
    result = figures(started, arrivals)
    show(console, result, args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"alert-latency-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"params": vars(args), "results": result}, indent=2))
    console.print(f"figures saved to {out}")


def figures(started: dict[str, tuple[str, float]], arrivals: Arrivals) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        apps = [a for a, (k, _) in started.items() if k == kind]
        row: dict[str, Any] = {"incidents": len(apps)}
        for channel in ("alerts.v1", "webhook", "email"):
            got = [
                arrivals.at[(channel, a)] - started[a][1]
                for a in apps
                if (channel, a) in arrivals.at
            ]
            if kind == "usage-drop":
                row[f"{channel}_minus_after"] = _stats([g - ABSENCE_AFTER_S for g in got])
            row[channel] = _stats(got) | {"missing": len(apps) - len(got)}
        out[kind] = row
    return out


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


def show(console: Console, result: dict[str, Any], args: argparse.Namespace) -> None:
    table = Table(
        title=f"Incident → notification, background {args.rate:,.0f} requests/s (seconds)"
    )
    for col in (
        "incident",
        "n",
        "alerts.v1 p50",
        "p99",
        "webhook p50",
        "p99",
        "e-mail p50",
        "p99",
        "missing",
    ):
        table.add_column(col, justify="left" if col == "incident" else "right", no_wrap=True)
    for kind, row in result.items():
        a, w, e = row["alerts.v1"], row["webhook"], row["email"]
        table.add_row(
            kind,
            str(row["incidents"]),
            _s(a, "p50"),
            _s(a, "p99"),
            _s(w, "p50"),
            _s(w, "p99"),
            _s(e, "p50"),
            _s(e, "p99"),
            f"{w.get('missing', 0)} / {e.get('missing', 0)}",
        )
        if kind == "usage-drop":
            am, wm, em = (row[f"{c}_minus_after"] for c in ("alerts.v1", "webhook", "email"))
            table.add_row(
                f"  without its {ABSENCE_AFTER_S:g} s 'after'",
                "",
                _s(am, "p50"),
                _s(am, "p99"),
                _s(wm, "p50"),
                _s(wm, "p99"),
                _s(em, "p50"),
                _s(em, "p99"),
                "",
            )
    console.print(table)


def _s(stats: dict[str, Any], key: str) -> str:
    return f"{stats[key]:.2f}" if key in stats else "–"


if __name__ == "__main__":
    main()
