"""Accounts, API tokens and share links managed from the dashboard, each secret shown
once, each change in the audit trail; and the audit page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import FakeCommands, FakeReader, make_app


def _client(reader: FakeReader, identity: Identity, audit: MemoryAudit, role: str) -> TestClient:
    client = TestClient(make_app(reader, FakeCommands(), identity, audit))
    sign_in_as(client, identity, role)
    return client


def _shown(page: str, attribute: str) -> str:
    found = re.search(rf"{attribute}>([^<]+)<", page)
    assert found, f"{attribute} is on the page"
    return found[1]


def test_an_admin_adds_a_person_whose_link_is_shown_once_then_changes_and_removes_them(
    reader: FakeReader, identity: Identity
) -> None:
    audit = MemoryAudit()
    admin = _client(reader, identity, audit, "admin")
    added = admin.post("/users", data={"email": "Zoe@Example.com", "role": "editor"})
    assert added.status_code == 200
    link = _shown(added.text, "data-signin-link")
    assert link.startswith("http://127.0.0.1:18080/signin/link/")
    assert identity.accounts.link_user(link.rsplit("/", 1)[1]).email == "zoe@example.com"  # type: ignore[union-attr]  # a valid link
    assert link not in admin.get("/users").text  # shown once
    bad = admin.post("/users", data={"email": "not-an-address", "role": "editor"})
    assert bad.status_code == 400 and "is not an e-mail address" in bad.text
    zoe = identity.accounts.by_email("zoe@example.com")
    admin.post(f"/users/{zoe.id}/role", data={"role": "viewer"})
    assert identity.accounts.by_email("zoe@example.com").role == "viewer"
    me = identity.accounts.by_email("admin@example.com")
    last = admin.post(f"/users/{me.id}/remove")
    assert last.status_code == 400 and "last admin" in last.text
    admin.post(f"/users/{zoe.id}/remove")
    assert identity.accounts.find("zoe@example.com") is None
    changes = [(e.actor, e.action, e.target, e.before, e.after) for e in audit.entries]
    assert changes == [
        (
            "admin@example.com",
            "user.add",
            "zoe@example.com",
            None,
            {"email": "zoe@example.com", "role": "editor"},
        ),
        (
            "admin@example.com",
            "user.role",
            "zoe@example.com",
            {"email": "zoe@example.com", "role": "editor"},
            {"email": "zoe@example.com", "role": "viewer"},
        ),
        (
            "admin@example.com",
            "user.remove",
            "zoe@example.com",
            {"email": "zoe@example.com", "role": "viewer"},
            None,
        ),
    ]


def test_people_manage_their_own_tokens_and_only_admins_see_everyones(
    reader: FakeReader, identity: Identity
) -> None:
    audit = MemoryAudit()
    viewer = _client(reader, identity, audit, "viewer")
    made = viewer.post("/tokens", data={"scope": "write", "label": "my script"})
    secret = _shown(made.text, "data-token")
    found = identity.tokens.check(secret).token
    assert found is not None and (found.owner, found.role) == ("viewer@example.com", "viewer")
    assert secret not in viewer.get("/tokens").text
    editor = _client(reader, identity, audit, "editor")
    assert found.id not in editor.get("/tokens").text  # not theirs
    refused = editor.post(f"/tokens/{found.id}/revoke")
    assert refused.status_code == 404 and identity.tokens.check(secret).problem == ""
    admin = _client(reader, identity, audit, "admin")
    assert found.id in admin.get("/tokens").text
    admin.post(f"/tokens/{found.id}/revoke")
    assert identity.tokens.check(secret).problem == "revoked"
    assert [e.action for e in audit.entries] == ["token.create", "token.revoke"]


def test_an_editor_makes_a_share_link_listed_with_creator_views_and_revokes_it(
    reader: FakeReader, identity: Identity
) -> None:
    audit = MemoryAudit()
    editor = _client(reader, identity, audit, "editor")
    form = {"apps": ["checkout"], "envs": ["prod"], "pages": ["overview", "errors"], "days": "7"}
    made = editor.post("/links", data=form)
    url = _shown(made.text, "data-share-url")
    token = url.rsplit("/s/", 1)[1]
    [link] = identity.links.list()
    assert (link.created_by, link.apps, link.pages) == (
        "editor@example.com",
        ("checkout",),
        ("errors", "overview"),
    )
    assert len(token) >= 43  # 256 random bits, URL-safe
    listed = editor.get("/links").text
    assert url not in listed and f'data-link="{link.id}"' in listed
    empty = editor.post("/links", data={"envs": ["prod"], "pages": ["errors"]})
    assert empty.status_code == 400 and "at least one app" in empty.text
    editor.post(f"/links/{link.id}/revoke")
    assert identity.links.check(token, view=False).problem == "revoked"
    assert [e.action for e in audit.entries] == ["link.create", "link.revoke"]


def test_the_audit_page_shows_changes_newest_first_to_admins(
    reader: FakeReader, identity: Identity
) -> None:
    reader.answers["audit"] = [
        {
            "ts": datetime.now(UTC),
            "actor": "ann@example.com",
            "role": "editor",
            "action": "rules.apply",
            "target": "checkout-errors",
            "before": '{"threshold": 5}',
            "after": '{"threshold": 10}',
            "address": "10.0.0.7",
            "via": "dashboard",
        }
    ]
    admin = _client(reader, identity, MemoryAudit(), "admin")
    page = admin.get("/audit?range=24h&q=checkout")
    assert page.status_code == 200
    assert 'data-audit-action="rules.apply"' in page.text and "10.0.0.7" in page.text
    name, params = reader.asked[-1]
    assert name == "audit" and params["q"] == "checkout"
    editor = _client(reader, identity, MemoryAudit(), "editor")
    assert editor.get("/audit").status_code == 403
