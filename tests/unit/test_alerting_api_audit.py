"""The alerting HTTP API accepts the identity store's tokens (personal ones act with
their owner's role; ingest keys never) and writes every change to the audit trail."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import build_identity
from shiftright_server.infra.api.alerting import create_alerting_app
from shiftright_server.infra.api.alerting_handler import AlertingApi
from shiftright_server.infra.api.tokens import IdentityTokens
from shiftright_server.infra.settings import AccessSettings

from tests.unit.test_alerts_cli import RULES, FakeStore, FakeWarehouse


def test_personal_tokens_act_with_their_owners_role_and_changes_are_audited(
    tmp_path: Path,
) -> None:
    identity = build_identity(tmp_path / "i.sqlite", AccessSettings(), PasswordHasher(1, 8, 1))
    ann, _ = identity.accounts.add("ann@example.com", "editor")
    write, _ = identity.tokens.create(ann, "write", "deploys")
    read, _ = identity.tokens.create(ann, "read")
    audit, store = MemoryAudit(), FakeStore()
    api = AlertingApi(store, IdentityTokens(identity), FakeWarehouse, audit=audit)
    client = TestClient(create_alerting_app(api))

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    refused = client.put("/rules", content=RULES, headers=auth(read))
    assert refused.status_code == 403 and store.config.version == 0  # a read token
    assert client.put("/rules", content=RULES, headers=auth(write)).status_code == 200
    assert store.config.applied_by == "ann@example.com"
    made = client.post(
        "/silences", json={"matchers": ["app=checkout"], "duration": "1h"}, headers=auth(write)
    )
    assert made.status_code == 201
    client.delete(f"/silences/{made.json()['id']}", headers=auth(write))
    assert [(e.actor, e.role, e.action, e.via) for e in audit.entries] == [
        ("ann@example.com", "editor", "rules.apply", "api"),
        ("ann@example.com", "editor", "silence.add", "api"),
        ("ann@example.com", "editor", "silence.expire", "api"),
    ]
    assert audit.entries[0].after["version"] == 1
    identity.accounts.set_role("ann@example.com", "viewer")  # the token follows its owner
    assert client.put("/rules", content=RULES, headers=auth(write)).status_code == 403
