"""The rule form and silences on the alerts pages: messages by field from the rule
file's own validation, the backtest drawn before saving, saving through the alerting
service, version conflicts, silences made and expired."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.permissions import Check
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.settings import Settings

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import FakeCommands, FakeReader
from tests.unit.dashboard.desk_fixture import FakeRollups, cpu_minutes
from tests.unit.test_alerts_cli import FakeStore

CPU_RULE = {
    "version": "0",
    "original": "",
    "name": "cpu-high",
    "kind": "threshold",
    "app": "checkout",
    "env": "prod",
    "source": "health",
    "measure": "avg:system.cpu.utilization",
    "window": "1m",
    "aggregate": "avg",
    "op": ">",
    "threshold": "0.8",
    "severity": "critical",
    "for": "2m",
}
OTHER_RULES = """version: 1
rules:
- name: checkout-errors
  kind: threshold
  scope: {app: checkout, env: prod, source: usage}
  measure: failure_rate
  threshold: 50
- name: cpu-high
  kind: threshold
  labels: {team: payments}
  scope: {app: checkout, env: prod, source: health, filters: {region: eu}}
  measure: avg:system.cpu.utilization
  threshold: 0.9
"""


@pytest.fixture
def store(desk_parts: tuple[Any, FakeStore, FakeRollups]) -> FakeStore:
    return desk_parts[1]


@pytest.fixture
def rollups(desk_parts: tuple[Any, FakeStore, FakeRollups]) -> FakeRollups:
    return desk_parts[2]


def field_problems(page: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-problem" id="p-(\w+)" role="alert">([^<]*)</p>', page))


def test_a_missing_and_a_malformed_field_are_named_next_to_their_fields_and_nothing_is_applied(
    web: TestClient, store: FakeStore
) -> None:
    missing = web.post("/alerts/rule-form", data={**CPU_RULE, "threshold": "", "intent": "save"})
    assert missing.status_code == 422
    assert field_problems(missing.text) == {"threshold": "Field required"}
    bad = web.post(
        "/alerts/rule-form",
        data={**CPU_RULE, "threshold": "lots", "window": "soon", "name": "9 lives"},
    )
    problems = field_problems(bad.text)
    assert problems["threshold"].startswith("Input should be a valid number")
    assert "bad duration &#39;soon&#39;" in problems["window"]
    assert "should match pattern" in problems["name"]
    assert 'id="f-threshold" name="threshold" value="lots" aria-invalid="true"' in bad.text
    assert store.config.version == 0


def test_kind_specific_fields_are_checked_for_each_kind(web: TestClient) -> None:
    change = {**CPU_RULE, "kind": "change", "percent": "-5"}
    assert field_problems(web.post("/alerts/rule-form", data=change).text) == {
        "percent": "Input should be greater than 0"
    }
    absence = {**CPU_RULE, "kind": "absence"}
    assert field_problems(web.post("/alerts/rule-form", data=absence).text) == {
        "after": "Field required"
    }
    groups = {**CPU_RULE, "kind": "error_group", "source": "error"}
    page = web.post("/alerts/rule-form", data=groups).text  # no transition ticked
    assert "at least 1 item" in field_problems(page)["transitions"]


def test_the_backtest_shows_when_the_rule_would_have_fired_before_anything_is_saved(
    web: TestClient, store: FakeStore, rollups: FakeRollups
) -> None:
    rollups.rollups = cpu_minutes(6 * 60, high=range(120, 100, -1))
    page = web.post("/alerts/rule-form", data={**CPU_RULE, "days": "1", "intent": "backtest"})
    assert page.status_code == 200
    assert "Would have fired 1 time</strong>" in page.text
    chart = json.loads(page.text.split('id="backtest-data">')[1].split("</script>")[0])
    assert chart["threshold"] == 0.8 and max(chart["v"]) == pytest.approx(0.95)
    [(fired, resolved)] = chart["fired"]
    # high for 20 minutes, pending 2 minutes first: it fires for roughly 18 of them
    assert 16 * 60 <= resolved - fired <= 20 * 60
    assert store.config.version == 0 and rollups.closed == 1
    quiet = web.post("/alerts/rule-form", data={**CPU_RULE, "threshold": "0.99"})
    assert "Would not have fired</strong>" in quiet.text


def test_saving_applies_the_rule_and_editing_keeps_what_the_form_does_not_show(
    web: TestClient, store: FakeStore
) -> None:
    store.apply(OTHER_RULES, "alice", "cli")
    form = web.get("/alerts/rule-form?name=cpu-high")
    assert 'id="f-threshold" name="threshold" value="0.9"' in form.text
    assert 'name="version" value="1"' in form.text
    edit = {**CPU_RULE, "original": "cpu-high", "version": "1", "intent": "save"}
    saved = web.post("/alerts/rule-form", data=edit, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/alerts?saved=cpu-high"
    rules = {r.name: r for r in store.config.rules.rules}
    assert store.config.version == 2 and store.config.applied_by == "editor@example.com"
    cpu = rules["cpu-high"]
    assert cpu.threshold == 0.8 and cpu.severity == "critical" and cpu.for_ == 120  # type: ignore[union-attr]  # a threshold rule
    assert cpu.labels == {"team": "payments"} and cpu.scope.filters == {"region": "eu"}
    assert rules["checkout-errors"].threshold == 50  # type: ignore[union-attr]  # as above
    page = web.get(saved.headers["location"]).text
    assert "Rule cpu-high saved: version 2 is applied." in page
    assert '<tr data-rule="cpu-high">' in page


def test_a_rule_applied_meanwhile_is_not_overwritten_and_a_taken_name_is_named(
    web: TestClient, store: FakeStore
) -> None:
    store.apply(OTHER_RULES, "alice", "cli")
    stale = {**CPU_RULE, "original": "cpu-high", "version": "0", "intent": "save"}
    conflict = web.post("/alerts/rule-form", data=stale)
    assert conflict.status_code == 409 and "applied (by alice) after this form" in conflict.text
    taken = web.post("/alerts/rule-form", data={**CPU_RULE, "version": "1", "intent": "save"})
    assert field_problems(taken.text) == {"name": "a rule named cpu-high exists already"}
    assert store.config.version == 1


def test_an_unknown_rule_to_edit_is_a_404(web: TestClient) -> None:
    missing = web.get("/alerts/rule-form?name=nope")
    assert missing.status_code == 404 and "no rule &#39;nope&#39;" in missing.text


def test_silences_are_made_expired_and_a_bad_matcher_is_explained(
    web: TestClient, store: FakeStore
) -> None:
    made = web.post(
        "/alerts/silences",
        data={"matchers": "app=checkout, alertname=cpu-high", "duration": "2h", "comment": "x"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    [silence] = store.config.silences.values()
    assert [str(m) for m in silence.matchers] == ['app="checkout"', 'alertname="cpu-high"']
    page = web.get(made.headers["location"]).text
    assert f'<tr data-silence="{silence.id}">' in page and f"Silence {silence.id} created" in page
    bad = web.post("/alerts/silences", data={"matchers": "checkout", "duration": "2h"})
    assert bad.status_code == 422 and "bad matcher &#39;checkout&#39;" in bad.text
    assert 'name="matchers" value="checkout"' in bad.text
    gone = web.post(f"/alerts/silences/{silence.id}/expire", follow_redirects=False)
    assert gone.status_code == 303 and store.config.silences == {}
    assert web.post("/alerts/silences/nope/expire").status_code == 409


def test_without_the_alerting_service_rules_are_read_only_and_say_why(
    client: TestClient,
) -> None:
    page = client.get("/alerts").text
    assert "Rules and silences cannot be shown or changed" in page and "shiftright up" in page
    assert client.get("/alerts/rule-form").status_code == 503
    assert client.post("/alerts/rule-form", data=CPU_RULE).status_code == 503


class Refusing:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def allows(self, request: Any, check: Check) -> bool:
        self.checks.append(check)
        return False


def test_changing_rules_and_silences_asks_the_policy_for_their_own_actions(
    reader: FakeReader, desk_parts: tuple[Any, FakeStore, FakeRollups], identity: Identity
) -> None:
    policy = Refusing()
    app = create_app(
        Settings(), reader=reader, commands=FakeCommands(), desk=desk_parts[0], identity=identity
    )
    app.state.policy = policy
    with TestClient(app) as web:
        sign_in_as(web, identity, "editor")
        refused = [
            web.get("/alerts/rule-form"),
            web.post("/alerts/rule-form", data={**CPU_RULE, "intent": "save"}),
            web.post("/alerts/silences", data={"matchers": "app=checkout", "duration": "1h"}),
            web.post("/alerts/silences/abc/expire"),
        ]
    assert [r.status_code for r in refused] == [403] * 4
    assert [c.action.value for c in policy.checks] == [
        "rules.edit",
        "rules.edit",
        "silences.edit",
        "silences.edit",
    ]
    assert desk_parts[1].config.version == 0 and desk_parts[1].config.silences == {}
