"""What the dashboard's browser tests run on: simulated traffic and an HTML/JS error
payload through the real pipeline (Kafka, stream worker, sink, warehouse), the dashboard
served in a thread, and browser tabs that record console errors and dialogs."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from playwright._impl._api_structures import SetCookieParam
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright
from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.timerange import sql_time
from shiftright_server.infra.access.identity import Identity, open_identity
from shiftright_server.infra.api.dashboard_desk import ServiceDesk
from shiftright_server.infra.api.dashboard_flags import service_flags
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.settings import (
    ClickHouseSettings,
    DashboardSettings,
    KafkaSettings,
    Settings,
    SinkSettings,
    StreamSettings,
)
from shiftright_server.producers.simulator import Simulator
from shiftright_server.streams.alerting.service import open_store

from tests.builders import event
from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline, emit_batched
from tests.integration.warehouse_fixture import free_port

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
CHROMIUM = "/usr/bin/chromium"
# Set to a folder to save a screenshot of each page there (the docs' images).
SCREENSHOTS = os.environ.get("SHIFTRIGHT_DASHBOARD_SCREENSHOTS", "")
Sql = Callable[[str], list[tuple[Any, ...]]]


@dataclass
class Stack:
    settings: Settings
    url: str
    sql: Sql
    xss_group: str
    group: str  # a plain group, for the resolve round trip
    session: str  # an editor's signed session cookie (the pages need a session)
    identity: Identity

    def cookies(self) -> list[SetCookieParam]:
        return [{"name": "sr_session", "value": self.session, "url": self.url}]


def editor_session(identity: Identity) -> str:
    """A signed session cookie of a new editor account (as if they had signed in)."""
    user, _ = identity.accounts.add("tester@example.com", "editor")
    return identity.sign(identity.sessions.start(user, "127.0.0.1").id, "session")


def traffic() -> list[dict[str, Any]]:
    """Four minutes of simulated traffic ending two minutes ago, a deploy marker, and
    one error whose message is an HTML/JS payload in the middle of it."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=6)
    traffic = Simulator(seed=7, rate=30, diurnal=False).tick(start, 4 * 60)
    middle = start + timedelta(minutes=2)
    host = next(
        e["host"]
        for e in traffic
        if e["kind"] == "health" and e["app"] == "checkout" and e["env"] == "prod"
    )
    payload = event(
        "error",
        middle,
        "checkout",
        "prod",
        host=host,
        exception_type="RenderError",
        exception_message=XSS,
        release="9.9.9",
    )
    deploy = event(
        "change",
        start + timedelta(minutes=1),
        "checkout",
        "prod",
        change_type="deploy",
        name="9.9.9",
    )
    traffic += [payload, deploy]
    traffic.sort(key=lambda e: e["ts"])
    return traffic


def serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    ch = settings.clickhouse
    desk = ServiceDesk(open_store(settings), lambda: get_client(ch, database=ch.database))
    flags = service_flags(settings.kafka.bootstrap_servers, settings.namespace)
    config = uvicorn.Config(
        create_app(settings, desk=desk, flags=flags),
        host=settings.dashboard.host,
        port=settings.dashboard.port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the dashboard server to start", interval=0.05)
    return server, thread


@contextmanager
def running_stack(kafka_bootstrap: str, clickhouse_url: str, state: Path) -> Iterator[Stack]:
    """Pipeline up, traffic stored and grouped, dashboard serving; all stopped after."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings(
        state_dir=state,
        namespace=namespace,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        clickhouse=ClickHouseSettings(url=clickhouse_url, database=namespace),
        sink=SinkSettings(batch_seconds=0.5),
        streams=StreamSettings(idle_close_seconds=2.0),
        dashboard=DashboardSettings(port=free_port()),
    )
    create_topics(settings)
    apply_schema(settings)
    client = get_client(settings.clickhouse, database=namespace)

    def sql(query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in client.query(query).result_rows]

    sent = traffic()
    errors = sum(1 for e in sent if e["kind"] == "error")
    usage = sum(1 for e in sent if e["kind"] == "usage")
    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        emit_batched(settings, sent)
        wait_for(
            lambda: (
                sql("SELECT sum(count) FROM error_groups FINAL") == [(errors,)]
                and sql("SELECT sum(events) FROM usage_minutely") == [(usage,)]
            ),
            120,
            lambda: (
                f"{errors} errors grouped and {usage} usage events stored: "
                f"{sql('SELECT sum(count) FROM error_groups FINAL')} / "
                f"{sql('SELECT sum(events) FROM usage_minutely')}\n{pipeline.log('streams')}"
            ),
        )
        [(xss_group,)] = sql(
            f"SELECT group_id FROM error_groups FINAL WHERE title LIKE '%{XSS[:8]}%'"
        )
        [(group,)] = sql(
            "SELECT group_id FROM error_groups FINAL WHERE app = 'checkout' AND status = 'unresolved' "
            "ORDER BY count DESC, group_id LIMIT 1"
        )
        server, thread = serve(settings)
        identity = open_identity(settings)
        try:
            session = editor_session(identity)
            yield Stack(settings, settings.dashboard.url, sql, xss_group, group, session, identity)
        finally:
            identity.close()
            server.should_exit = True
            thread.join(20)
    finally:
        pipeline.stop()
        client.close()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, driven by Playwright (never a downloaded browser)."""
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    page: Page
    problems: list[str]  # console errors and uncaught exceptions
    dialogs: list[str]


@contextmanager
def watched_tab(browser: Browser, cookies: list[SetCookieParam]) -> Iterator[Watched]:
    """A fresh context (with these cookies) and page whose console errors, exceptions and
    dialogs are kept."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    if cookies:
        context.add_cookies(cookies)
    page = context.new_page()
    watched = Watched(page, [], [])

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.problems.append(message.text)

    def dialog(d: Dialog) -> None:
        watched.dialogs.append(d.message)
        d.dismiss()

    page.on("console", console)
    page.on("pageerror", lambda exc: watched.problems.append(str(exc)))
    page.on("dialog", dialog)
    yield watched
    context.close()


def shown_range(page: Page) -> tuple[datetime, datetime]:
    """The range a page says it shows."""
    body = page.locator("body")
    start, end = (body.get_attribute(a) or "" for a in ("data-range-start", "data-range-end"))
    return datetime.fromisoformat(start), datetime.fromisoformat(end)


def where(app: str, env: str, start: datetime, end: datetime) -> str:
    return (
        f"app = '{app}' AND env = '{env}' "
        f"AND ts >= toDateTime64('{sql_time(start)}', 3, 'UTC') "
        f"AND ts < toDateTime64('{sql_time(end)}', 3, 'UTC')"
    )


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"dashboard-{name}.png"))


def subscribe_on_the_rule_page(stack: Stack, page: Page, signin_link: str) -> str:
    """Sign in with a one-time link, open the rule checkout-new-errors and subscribe to it
    by e-mail from its "Notify me" link; the new subscription's id."""
    page.goto(f"{stack.url}/signin/link/{signin_link}")
    page.get_by_label("New password").fill("a long enough password")
    page.get_by_role("button", name="Set password and sign in").click()
    page.wait_for_selector(".tile")
    rule_page = f"{stack.url}/alerts/checkout-new-errors?app=checkout&env=prod"

    # the dashboard rereads the applied rules every few seconds: ask (off the page) until
    # it knows the rule, then open its page
    wait_for(lambda: page.request.get(rule_page).ok, 20, "the applied rule", interval=0.5)
    page.goto(rule_page)
    page.get_by_role("link", name="Notify me about checkout-new-errors").click()
    filled = {
        f: page.locator(f"[name={f}]").input_value() for f in ("channel", "app", "env", "rule")
    }
    assert filled == {
        "channel": "email",
        "app": "checkout",
        "env": "prod",
        "rule": "checkout-new-errors",
    }
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_selector("text=Subscribed (")
    row = page.locator("tr[data-subscription]")
    assert row.count() == 1 and "checkout-new-errors" in row.inner_text()
    return row.get_attribute("data-subscription") or ""


def unsubscribe_by_the_link(page: Page, link: str) -> None:
    """Open a mail's unsubscribe link (the GET changes nothing) and press its button."""
    response = page.goto(link)
    assert response is not None and response.status == 200
    assert "rule checkout-new-errors" in page.locator("main").inner_text()
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=gets no more alerts from this subscription")
