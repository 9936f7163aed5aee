"""The flag pages: state per environment and who flipped it, the error rate by variant,
flips and restores by editors (through the same core as the CLI), viewers read only,
share-link visitors never see flags, and app text is escaped."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.api.dashboard_flags import ServiceFlags
from shiftright_server.sinks.flags.admin import FlagAdmin

from tests.unit.dashboard.conftest import (
    XSS,
    FakeCommands,
    FakeReader,
    make_app,
    minute_ago,
    sign_in_as,
)
from tests.unit.flags.memory_topic import MemoryFlagTopic
from tests.unit.flags.test_flag_file import GOOD


@pytest.fixture
def topic() -> MemoryFlagTopic:
    made = MemoryFlagTopic()
    text = GOOD.replace("  - name: layout\n", f"  - name: layout\n    description: '{XSS}'\n")
    made.apply(text, "ann@example.com")
    return made


def _client(
    reader: FakeReader, identity: Identity, topic: MemoryFlagTopic, audit: MemoryAudit
) -> TestClient:
    flags = ServiceFlags(FlagAdmin(topic))
    return TestClient(make_app(reader, FakeCommands(), identity, audit, flags))


def _state(page: str, env: str) -> str:
    marker = f'data-env="{env}" data-state="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def test_an_editor_flips_and_restores_and_the_page_says_who(
    reader: FakeReader, identity: Identity, topic: MemoryFlagTopic
) -> None:
    audit = MemoryAudit()
    client = _client(reader, identity, topic, audit)
    sign_in_as(client, identity, "editor", "ed@example.com")
    listed = client.get("/flags")
    assert listed.status_code == 200 and _state(listed.text, "prod") == "on"
    form = {"app": "checkout", "env": "prod", "to": "off", "reason": XSS}
    done = client.post("/flags/new-checkout/flip", data=form, follow_redirects=False)
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert _state(page, "prod") == "off" and "by ed@example.com" in page and "Restore" in page
    assert XSS not in page and "&lt;script&gt;" in page  # the reason, escaped
    change = topic.changes[-1]
    assert (change.name, change.value, change.actor) == ("new-checkout", "off", "ed@example.com")
    client.post("/flags/new-checkout/restore", data={"app": "checkout", "env": "prod"})
    assert _state(client.get("/flags").text, "prod") == "on"
    assert [e.action for e in audit.entries] == ["flags.flip", "flags.restore"]
    wrong = client.post("/flags/layout/flip", data={**form, "to": "narrow"})
    assert wrong.status_code == 422 and "classic" in wrong.text


def test_a_flip_without_the_csrf_token_is_refused(
    reader: FakeReader, identity: Identity, topic: MemoryFlagTopic
) -> None:
    client = _client(reader, identity, topic, MemoryAudit())
    sign_in_as(client, identity, "editor")
    del client.headers["X-CSRF-Token"]
    form = {"app": "checkout", "env": "prod", "to": "off"}
    assert client.post("/flags/new-checkout/flip", data=form).status_code == 403
    assert not topic.changes[2:]  # only the file's own changes


def test_viewers_read_without_buttons_and_cannot_flip(
    reader: FakeReader, identity: Identity, topic: MemoryFlagTopic
) -> None:
    client = _client(reader, identity, topic, MemoryAudit())
    sign_in_as(client, identity, "viewer")
    page = client.get("/flags/layout?app=checkout")
    assert page.status_code == 200 and "flip-form" not in page.text
    assert XSS not in page.text  # the description an app's file carries, escaped
    form = {"app": "checkout", "env": "prod", "to": "off"}
    assert client.post("/flags/new-checkout/flip", data=form).status_code == 403


def test_share_link_visitors_never_see_flags(
    reader: FakeReader, identity: Identity, topic: MemoryFlagTopic
) -> None:
    client = _client(reader, identity, topic, MemoryAudit())
    token, _ = identity.links.create("ed@example.com", ["checkout"], ["prod"], ["overview"], 30)
    client.get(f"/s/{token}", follow_redirects=False)
    assert client.get("/flags", follow_redirects=False).status_code == 403
    assert client.get("/flags/layout", follow_redirects=False).status_code == 403
    assert ">Flags<" not in client.get("/?app=checkout&env=prod").text


def test_the_error_rate_by_variant_compares_the_cohorts(
    reader: FakeReader, identity: Identity, topic: MemoryFlagTopic
) -> None:
    t = minute_ago(10)
    reader.answers["flag_variants"] = [
        {"t": t, "variant": "on", "errors": 30, "requests": 1000},
        {"t": t, "variant": "off", "errors": 2, "requests": 1000},
    ]
    reader.answers["flag_flips"] = [
        {
            "ts": minute_ago(5),
            "env": "prod",
            "previous_value": "on",
            "value": "off",
            "actor": "alert:checkout-errors",
            "description": XSS,
        }
    ]
    client = _client(reader, identity, topic, MemoryAudit())
    sign_in_as(client, identity, "viewer")
    page = client.get("/flags/new-checkout?app=checkout&range=1h").text
    rates = {row.split('"')[0]: row for row in page.split('data-variant="')[1:]}
    assert "<td>30.0</td>" in rates["on"] and "<td>2.0</td>" in rates["off"]
    assert "alert:checkout-errors" in page and XSS not in page
    asked: dict[str, Any] = dict(reader.asked)["flag_variants"]
    assert (asked["app"], asked["flag"]) == ("checkout", "new-checkout")


def test_the_alerts_page_lists_a_cohort_rule_without_offering_the_form(
    reader: FakeReader, identity: Identity
) -> None:
    from shiftright_server.dashboard.app import create_app
    from shiftright_server.infra.settings import Settings

    from tests.unit.dashboard.desk_fixture import service_desk
    from tests.unit.test_alerting_cohort_rule import RULES

    desk, store, _ = service_desk()
    store.apply(RULES, "ann@example.com", "rules.yaml")
    app = create_app(
        Settings(), reader=reader, commands=FakeCommands(), desk=desk, identity=identity
    )
    client = TestClient(app)
    sign_in_as(client, identity, "editor")
    page = client.get("/alerts").text
    row = page.split('data-rule="new-checkout-worse"', 1)[1].split("</tr>", 1)[0]
    assert "new-checkout: on vs off" in row and "edit the rule file" in row
    assert "rule-form" not in row
