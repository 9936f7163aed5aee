"""Rules and silences changed on the dashboard are recorded as the signed-in person, with
the rule before and after, in the audit trail."""

from __future__ import annotations

from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.settings import Settings

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import FakeCommands, FakeReader
from tests.unit.dashboard.desk_fixture import service_desk
from tests.unit.dashboard.test_rule_form import CPU_RULE


def test_rule_and_silence_changes_are_audited_as_the_person(
    reader: FakeReader, identity: Identity
) -> None:
    desk, store, _ = service_desk()
    audit = MemoryAudit()
    app = create_app(
        Settings(),
        reader=reader,
        commands=FakeCommands(),
        desk=desk,
        identity=identity,
        audit=audit,
    )
    web = TestClient(app)
    sign_in_as(web, identity, "editor")
    saved = web.post(
        "/alerts/rule-form", data={**CPU_RULE, "intent": "save"}, follow_redirects=False
    )
    assert saved.status_code == 303
    assert store.config.applied_by == "editor@example.com"
    again = {
        **CPU_RULE,
        "version": "1",
        "original": "cpu-high",
        "threshold": "0.9",
        "intent": "save",
    }
    assert web.post("/alerts/rule-form", data=again, follow_redirects=False).status_code == 303
    web.post("/alerts/silences", data={"matchers": "app=checkout", "duration": "1h"})
    [silence] = store.config.silences.values()
    assert silence.created_by == "editor@example.com"
    web.post(f"/alerts/silences/{silence.id}/expire")
    made, changed, silenced, expired = audit.entries
    assert (made.action, made.target, made.before) == ("rules.apply", "cpu-high", None)
    assert made.after["threshold"] == 0.8 and made.actor == "editor@example.com"
    assert (changed.before["threshold"], changed.after["threshold"]) == (0.8, 0.9)
    assert (silenced.action, silenced.target) == ("silence.add", silence.id)
    assert silenced.after["matchers"] == ['app="checkout"']
    assert (expired.action, expired.after) == ("silence.expire", {"state": "expired"})
