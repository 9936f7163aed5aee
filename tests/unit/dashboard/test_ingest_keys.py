"""The ingest-keys page (admins): a key made there is shown once and works at the gateway's
check, is listed with who made it, when and its last use, and revoked there is refused;
bad input is answered by field with nothing saved; every change is audited."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.access.ingest_keys import KeyStore, keys_path
from shiftright_server.infra.settings import Settings

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import FakeCommands, FakeReader


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state")


@pytest.fixture
def store(settings: Settings) -> Iterator[KeyStore]:
    """The key file as the gateway and ``shiftright gateway keys`` open it."""
    opened = KeyStore(keys_path(settings))
    yield opened
    opened.close()


@pytest.fixture
def signed_in(
    settings: Settings, reader: FakeReader, identity: Identity, audit: MemoryAudit
) -> Callable[[str], TestClient]:
    """A client of the dashboard, signed in with a new account of the given role."""

    def client(role: str) -> TestClient:
        app = create_app(
            settings, reader=reader, commands=FakeCommands(), identity=identity, audit=audit
        )
        made = TestClient(app)
        sign_in_as(made, identity, role)
        return made

    return client


def test_an_admin_makes_a_key_shown_once_sees_its_use_and_revokes_it(
    signed_in: Callable[[str], TestClient], audit: MemoryAudit, store: KeyStore
) -> None:
    admin = signed_in("admin")
    made = admin.post("/keys", data={"app": "checkout", "env": "prod", "label": "<b>web</b>"})
    assert made.status_code == 200
    found = re.search(r"data-ingest-key>([^<]+)<", made.text)
    assert found, "the new key is on the page"
    token = found[1]
    lookup = store.check(token)  # as the gateway checks a request's key
    assert lookup.problem == "" and lookup.key is not None
    assert (lookup.key.app, lookup.key.env, lookup.key.created_by) == (
        "checkout",
        "prod",
        "admin@example.com",
    )
    listed = admin.get("/keys").text
    assert token not in listed  # shown once
    row = re.search(rf'<tr data-key="{lookup.key.id}">(.*?)</tr>', listed, re.S)
    assert row, "the key is listed"
    assert "&lt;b&gt;web&lt;/b&gt;" in row[1] and "<b>" not in row[1]  # escaped
    assert "admin@example.com" in row[1] and "active" in row[1]
    used = store.get(lookup.key.id)
    assert used is not None and used.last_used_at is not None  # the check noted its use
    assert used.last_used_at in row[1]
    gone = admin.post(f"/keys/{lookup.key.id}/revoke")
    assert gone.status_code == 200 and "revoked " in gone.text
    assert store.check(token).problem == "revoked"
    again = admin.post(f"/keys/{lookup.key.id}/revoke")
    assert again.status_code == 404 and f"no active ingest key {lookup.key.id}" in again.text
    assert [(e.actor, e.action, e.target, e.after) for e in audit.entries] == [
        (
            "admin@example.com",
            "key.create",
            lookup.key.id,
            {"app": "checkout", "env": "prod", "label": "<b>web</b>"},
        ),
        ("admin@example.com", "key.revoke", lookup.key.id, None),
    ]


def test_bad_input_is_answered_by_field_and_saves_nothing(
    signed_in: Callable[[str], TestClient], audit: MemoryAudit, store: KeyStore
) -> None:
    admin = signed_in("admin")
    no_app = admin.post("/keys", data={"app": " ", "env": "prod", "label": "kept"})
    assert re.search(r'id="p-app">a key must be bound to an app<', no_app.text)
    assert 'value="kept"' in no_app.text  # the form comes back as it was sent
    assert no_app.status_code == 400
    bad_env = admin.post("/keys", data={"app": "checkout", "env": "pro d<x>"})
    assert bad_env.status_code == 400
    assert re.search(r'id="p-env">&#39;pro d&lt;x&gt;&#39; is not an env name', bad_env.text)
    assert store.list() == [] and audit.entries == []


def test_only_admins_with_a_csrf_token_change_keys(
    signed_in: Callable[[str], TestClient], audit: MemoryAudit, store: KeyStore
) -> None:
    editor = signed_in("editor")
    assert editor.get("/keys").status_code == 403
    assert editor.post("/keys", data={"app": "checkout"}).status_code == 403
    admin = signed_in("admin")
    del admin.headers["X-CSRF-Token"]
    assert admin.post("/keys", data={"app": "checkout"}).status_code == 403
    _, key = store.create("checkout")
    assert admin.post(f"/keys/{key.id}/revoke").status_code == 403
    assert [k.revoked for k in store.list()] == [False] and audit.entries == []
