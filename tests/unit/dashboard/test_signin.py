"""Signing in and out through the dashboard: one-time links, passwords, sessions that
rotate at sign-in and end on the server, throttling, and CSRF on every unsafe request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity, build_identity
from shiftright_server.infra.access.ingest_keys import KeyStore
from shiftright_server.infra.settings import AccessSettings

from tests.unit.dashboard.conftest import (
    FAST_HASH,
    FakeCommands,
    FakeReader,
    group_row,
    make_app,
    sign_in_as,
)

PASSWORD = "correct horse battery"


@pytest.fixture
def anon(reader: FakeReader, commands: FakeCommands, identity: Identity) -> TestClient:
    return TestClient(make_app(reader, commands, identity, MemoryAudit()))


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the form carries a CSRF token"
    return found[1]


def _sign_in(client: TestClient, email: str, password: str, address_next: str = "/") -> int:
    form = client.get("/signin")
    data = {
        "email": email,
        "password": password,
        "next": address_next,
        "csrf_token": _csrf(form.text),
    }
    status: int = client.post("/signin", data=data, follow_redirects=False).status_code
    return status


def _with_password(identity: Identity, email: str, role: str = "viewer") -> None:
    _, link = identity.accounts.add(email, role)
    assert identity.accounts.redeem_link(link, PASSWORD) is not None


def test_a_sign_in_link_sets_the_password_once_and_signs_in(
    anon: TestClient, identity: Identity
) -> None:
    _, link = identity.accounts.add("ann@example.com", "editor")
    assert anon.get("/", follow_redirects=False).headers["location"] == "/signin?next=%2F"
    page = anon.get(f"/signin/link/{link}")
    assert page.status_code == 200 and "ann@example.com" in page.text
    short = anon.post(
        f"/signin/link/{link}", data={"password": "short", "csrf_token": _csrf(page.text)}
    )
    assert short.status_code == 400 and "at least 12 characters" in short.text
    used = anon.post(
        f"/signin/link/{link}",
        data={"password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert used.status_code == 303 and used.headers["location"] == "/"
    cookie = used.headers["set-cookie"]
    assert "sr_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here
    assert anon.get("/", follow_redirects=False).status_code == 200
    assert anon.get(f"/signin/link/{link}").status_code == 404  # once only


def test_sign_in_rotates_the_session_and_sign_out_ends_it_on_the_server(
    anon: TestClient, identity: Identity
) -> None:
    _with_password(identity, "bob@example.com")
    planted = "a-session-id-an-attacker-chose"
    anon.cookies.set("sr_session", identity.sign(planted, "session"), domain="testserver.local")
    assert _sign_in(anon, "bob@example.com", PASSWORD) == 303
    signed = anon.cookies.get("sr_session") or ""
    session_id = identity.unsign(signed, "session")
    assert session_id and session_id != planted
    assert identity.sessions.get(planted) is None
    assert anon.get("/", follow_redirects=False).status_code == 200
    token = _csrf(anon.get("/").text)
    out = anon.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert identity.sessions.get(session_id) is None  # ended on the server
    replay = TestClient(anon.app)
    replay.cookies.set("sr_session", signed)  # the old cookie, kept by someone
    assert replay.get("/", follow_redirects=False).headers["location"].startswith("/signin")


def test_a_forged_or_unsigned_session_cookie_is_ignored(
    anon: TestClient, identity: Identity
) -> None:
    user, _ = identity.accounts.add("eve@example.com", "admin")
    session = identity.sessions.start(user, "x")
    anon.cookies.set("sr_session", f"{session.id}.{'0' * 32}")
    assert anon.get("/", follow_redirects=False).status_code == 303


def test_sessions_end_when_idle_or_too_old(tmp_path: object) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    settings = AccessSettings(session_idle_minutes=30, session_max_hours=2)
    identity = build_identity(tmp_path / "i.sqlite", settings, FAST_HASH, clock=lambda: now[0])  # type: ignore[operator]  # tmp_path is a Path
    user, _ = identity.accounts.add("cy@example.com", "viewer")
    idle = identity.sessions.start(user, "x")
    busy = identity.sessions.start(user, "x")
    for _ in range(4):  # busy: used every 25 minutes, for 100 minutes in all
        now[0] += timedelta(minutes=25)
        assert identity.sessions.get(busy.id) is not None
    assert identity.sessions.get(idle.id) is None  # idle past 30 minutes
    now[0] += timedelta(minutes=25)
    assert identity.sessions.get(busy.id) is None  # older than 2 hours


def test_wrong_passwords_are_throttled_per_account_and_per_address(
    anon: TestClient, identity: Identity
) -> None:
    _with_password(identity, "dee@example.com")
    for _ in range(5):
        assert _sign_in(anon, "dee@example.com", "wrong password!") == 401
    assert _sign_in(anon, "dee@example.com", PASSWORD) == 429  # even the right one, for now
    form = anon.get("/signin")
    data = {"email": "dee@example.com", "password": PASSWORD, "csrf_token": _csrf(form.text)}
    assert int(anon.post("/signin", data=data).headers["retry-after"]) > 0
    _with_password(identity, "fay@example.com")
    for i in range(45):  # another account from the same address: 50 failures in all
        _sign_in(anon, f"nobody{i}@example.com", "wrong password!")
    assert _sign_in(anon, "fay@example.com", PASSWORD) == 429


def test_unsafe_requests_without_the_right_csrf_token_are_refused(
    reader: FakeReader, commands: FakeCommands, identity: Identity
) -> None:
    reader.answers["error_group"] = [group_row()]
    client = TestClient(make_app(reader, commands, identity, MemoryAudit()))
    sign_in_as(client, identity, "editor")
    good = client.headers.pop("X-CSRF-Token")
    missing = client.post("/errors/g1/resolve", data={"app": "checkout"})
    assert missing.status_code == 403 and "CSRF" in missing.text
    wrong = client.post("/errors/g1/resolve", data={"app": "checkout", "csrf_token": "0" * 32})
    assert wrong.status_code == 403
    other, _ = identity.accounts.add("other@example.com", "editor")
    theirs = identity.sign(identity.sessions.start(other, "x").id, "csrf").rpartition(".")[2]
    assert (
        client.post(
            "/errors/g1/resolve", data={"app": "checkout", "csrf_token": theirs}
        ).status_code
        == 403
    )
    assert commands.sent == []
    form = client.post(
        "/errors/g1/resolve", data={"app": "checkout", "csrf_token": good}, follow_redirects=False
    )
    assert form.status_code == 303 and len(commands.sent) == 1
    header = client.post(
        "/errors/g1/unresolve",
        data={"app": "checkout"},
        headers={"X-CSRF-Token": good},
        follow_redirects=False,
    )
    assert header.status_code == 303 and len(commands.sent) == 2
    assert "X-CSRF-Token" in client.get("/").text  # htmx sends it from the page


def test_a_decision_is_recorded_in_the_audit_trail_with_who_and_before(
    reader: FakeReader, commands: FakeCommands, identity: Identity
) -> None:
    reader.answers["error_group"] = [group_row()]
    audit = MemoryAudit()
    client = TestClient(make_app(reader, commands, identity, audit))
    sign_in_as(client, identity, "editor")
    client.post("/errors/g1/ignore", data={"app": "checkout", "ignore_for": "24h"})
    [entry] = [e for e in audit.entries if e.action.startswith("errors.")]
    assert (entry.actor, entry.role, entry.action, entry.target) == (
        "editor@example.com",
        "editor",
        "errors.ignore",
        "checkout/g1",
    )
    assert entry.before == {"status": "unresolved"} and entry.after["ignore_for"] == "24h"
    assert entry.via == "dashboard" and entry.address == "testclient"


def test_behind_https_the_session_cookie_is_secure(
    reader: FakeReader, commands: FakeCommands, identity: Identity
) -> None:
    over_https = TestClient(
        make_app(reader, commands, identity, MemoryAudit()), base_url="https://dash.example"
    )
    _with_password(identity, "sec@example.com")
    assert _sign_in(over_https, "sec@example.com", PASSWORD) == 303
    [cookie] = [c for c in over_https.cookies.jar if c.name == "sr_session"]
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")


def test_an_ingest_key_opens_nothing_on_the_dashboard(
    anon: TestClient, identity: Identity, tmp_path: Path
) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    key, _ = store.create("checkout", "prod")
    for path in ("/", "/errors", "/api/openapi.json"):
        refused = anon.get(path, headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 401, path
    store.close()
