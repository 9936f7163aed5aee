"""The flags HTTP API: personal tokens (read reads, write of an editor changes), the same
records and change events as the command line, every change in the audit trail."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import build_identity
from shiftright_server.infra.api.flags import create_flags_app
from shiftright_server.infra.api.flags_handler import FlagsApi
from shiftright_server.infra.api.tokens import IdentityTokens
from shiftright_server.infra.settings import AccessSettings
from shiftright_server.sinks.flags.admin import FlagAdmin

from tests.unit.flags.memory_topic import MemoryFlagTopic
from tests.unit.flags.test_flag_file import GOOD


class Api:
    def __init__(self, tmp_path: Path) -> None:
        identity = build_identity(tmp_path / "i.sqlite", AccessSettings(), PasswordHasher(1, 8, 1))
        ann, _ = identity.accounts.add("ann@example.com", "editor")
        self.write, _ = identity.tokens.create(ann, "write", "deploys")
        self.read, _ = identity.tokens.create(ann, "read")
        self.ci, _ = identity.tokens.create_unowned("editor", "ci")
        self.topic, self.audit = MemoryFlagTopic(), MemoryAudit()
        api = FlagsApi(FlagAdmin(self.topic), IdentityTokens(identity), audit=self.audit)
        self.client = TestClient(create_flags_app(api))

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path)


FLIP = "/flags/checkout/new-checkout/environments/prod"


def test_a_write_token_applies_flips_and_restores_like_the_cli(api: Api) -> None:
    c, w = api.client, api.auth(api.write)
    assert c.put("/files/checkout", content=GOOD, headers=api.auth(api.read)).status_code == 403
    dry = c.put("/files/checkout?dry_run=true", content=GOOD, headers=w).json()
    assert dry["applied"] is False and not api.topic.folder.apps
    applied = c.put("/files/checkout", content=GOOD, headers=w).json()
    assert applied["applied"] and applied["version"] == 1
    assert {ch["name"] for ch in applied["changes"]} == {"new-checkout", "layout", "bulk-export"}
    flipped = c.post(f"{FLIP}/flip", json={"to": "off", "reason": "errors"}, headers=w)
    prod = next(e for e in flipped.json()["environments"] if e["env"] == "prod")
    assert prod["state"] == "off" and prod["actor"] == "ann@example.com"
    assert not prod["held_by_alert"] and prod["file_state"] == "on"
    restored = c.post(f"{FLIP}/restore", headers=w).json()
    assert next(e for e in restored["environments"] if e["env"] == "prod")["state"] == "on"
    assert c.post(f"{FLIP}/restore", headers=w).status_code == 409  # nothing flipped
    flips = [(e.name, e.previous_value, e.value, e.actor) for e in api.topic.changes[-2:]]
    assert flips == [
        ("new-checkout", "on", "off", "ann@example.com"),
        ("new-checkout", "off", "on", "ann@example.com"),
    ]
    assert [(e.actor, e.action, e.target, e.via) for e in api.audit.entries] == [
        ("ann@example.com", "flags.apply", "checkout", "api"),
        ("ann@example.com", "flags.flip", "checkout/new-checkout/prod", "api"),
        ("ann@example.com", "flags.restore", "checkout/new-checkout/prod", "api"),
    ]


def test_reads_need_a_token_and_show_state_per_environment(api: Api) -> None:
    c = api.client
    c.put("/files/checkout", content=GOOD, headers=api.auth(api.ci))
    c.post(f"{FLIP}/flip", json={"to": "off"}, headers=api.auth(api.ci))
    assert c.get("/flags").status_code == 401
    listed = c.get("/flags?app=checkout", headers=api.auth(api.read)).json()["flags"]
    assert [f["name"] for f in listed] == ["new-checkout", "layout", "bulk-export"]
    layout = c.get("/flags/checkout/layout", headers=api.auth(api.read)).json()
    assert layout["variants"] == ["classic", "wide"]
    toggle = listed[0]["environments"]
    assert [(e["env"], e["state"], e["actor"]) for e in toggle] == [
        ("preprod", "off", ""),
        ("prod", "off", "token:ci"),  # a token owned by no one
    ]
    shown = c.get("/files/checkout", headers=api.auth(api.read))
    assert shown.headers["etag"] == '"1"' and shown.json()["yaml"] == GOOD
    assert c.get("/flags/checkout/nope", headers=api.auth(api.read)).status_code == 404


def test_bad_changes_are_refused_with_what_is_wrong(api: Api) -> None:
    c, w = api.client, api.auth(api.write)
    bad = c.put(
        "/files/checkout", content=GOOD.replace("default: classic", "default: x"), headers=w
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["line"] > 0
    assert c.put("/files/billing", content=GOOD, headers=w).json()["error"] == "wrong_app"
    c.put("/files/checkout", content=GOOD, headers=w)
    stale = c.put("/files/checkout", content=GOOD + "\n", headers={**w, "If-Match": '"7"'})
    assert stale.status_code == 412
    wrong = c.post("/flags/checkout/layout/environments/prod/flip", json={"to": "x"}, headers=w)
    assert wrong.status_code == 422 and "classic" in wrong.json()["message"]
    assert len(api.audit.entries) == 1  # only the good apply
