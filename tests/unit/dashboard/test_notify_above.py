""" "Notify me when this goes above …" from a chart: one form makes the threshold rule
(through the alerting service, as the rule form does) and the person's e-mail
subscription to it; bad input is answered by field with nothing saved."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.settings import Settings

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import FakeCommands, FakeReader, minute_ago
from tests.unit.test_alerts_cli import FakeStore

CPU = "/alerts/notify-above?app=checkout&env=prod&chart=health%3Asystem.cpu.utilization"
FORM = {"app": "checkout", "env": "prod", "chart": "health:system.cpu.utilization"}


def test_a_health_chart_links_to_the_form_and_it_makes_the_rule_and_the_subscription(
    web: TestClient,
    reader: FakeReader,
    desk_parts: tuple[Any, FakeStore, Any],
    identity: Identity,
    audit: MemoryAudit,
) -> None:
    reader.answers["hosts"] = [
        {"app": "checkout", "env": "prod", "host": "web-1", "last_minute": minute_ago(1)}
    ]
    health = web.get("/health?range=1h").text
    assert CPU.replace("&", "&amp;") in health  # under the CPU chart
    assert "CPU above" in web.get(CPU).text
    made = web.post("/alerts/notify-above", data=FORM | {"threshold": "80"}, follow_redirects=False)
    assert made.status_code == 303
    name = "system.cpu.utilization-above-80.checkout.prod"
    [rule] = desk_parts[1].read().rules.rules
    assert (rule.name, rule.scope.app, rule.scope.env, rule.scope.source) == (
        name,
        "checkout",
        "prod",
        "health",
    )
    assert (rule.measure, rule.threshold) == ("avg:system.cpu.utilization", 0.8)  # type: ignore[union-attr]  # a threshold rule
    [sub] = identity.subscriptions.list()
    assert (sub.owner, sub.channel, sub.to, sub.app, sub.env, sub.rule) == (
        "editor@example.com",
        "email",
        "editor@example.com",
        "checkout",
        "prod",
        name,
    )
    shown = web.get(made.headers["location"]).text
    assert f"Subscribed: an e-mail to editor@example.com when {name} fires." in shown
    again = web.post(
        "/alerts/notify-above", data=FORM | {"threshold": "80"}, follow_redirects=False
    )
    assert again.status_code == 303  # the same rule and subscription, not copies
    assert len(desk_parts[1].read().rules.rules) == 1 and len(identity.subscriptions.list()) == 1
    assert [e.action for e in audit.entries] == ["rules.apply", "subscription.add"]


def test_bad_input_is_named_by_field_and_nothing_is_saved(
    web: TestClient, desk_parts: tuple[Any, FakeStore, Any], identity: Identity
) -> None:
    for typed, says in (("lots", "&#39;lots&#39; is not a number"), ("", "Field required")):
        page = web.post("/alerts/notify-above", data=FORM | {"threshold": typed})
        assert page.status_code == 422
        assert re.search(rf'id="p-threshold" role="alert">{says}<', page.text), page.text
    unknown = web.post("/alerts/notify-above", data=FORM | {"chart": "nope", "threshold": "1"})
    assert unknown.status_code == 404
    assert desk_parts[1].read().rules.rules == [] and identity.subscriptions.list() == []


def test_viewers_get_no_link_and_no_form(reader: FakeReader, identity: Identity) -> None:
    app = create_app(Settings(), reader=reader, commands=FakeCommands(), identity=identity)
    with TestClient(app) as viewer:
        sign_in_as(viewer, identity, "viewer")
        reader.answers["hosts"] = [
            {"app": "checkout", "env": "prod", "host": "web-1", "last_minute": minute_ago(1)}
        ]
        assert "notify-above" not in viewer.get("/health?range=1h").text
        assert viewer.get(CPU).status_code == 403
