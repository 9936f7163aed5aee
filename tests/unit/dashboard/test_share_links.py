"""Read-only share links: the visitor sees only the link's pages, apps and envs, with
personal data masked; editing the URL for another app or env is refused; expired and
revoked links open nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity, build_identity
from shiftright_server.infra.settings import AccessSettings

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import (
    FAST_HASH,
    FakeCommands,
    FakeReader,
    group_row,
    make_app,
    minute_ago,
)

MESSAGE = "card declined for ann.lee@example.com (user_id=4711, customer: acme-42)"


@pytest.fixture
def shared(reader: FakeReader) -> FakeReader:
    reader.answers["scopes"] += [{"app": "catalog", "env": "prod"}]
    reader.answers["error_group"] = [group_row(title=f"PaymentError: {MESSAGE}")]
    reader.answers["error_latest"] = [
        {
            "event_id": "e1",
            "ts": minute_ago(2),
            "env": "prod",
            "release": "1.4.2",
            "host": "web-1",
            "route": "/pay",
            "exception_type": "PaymentError",
            "message": MESSAGE,
            "stacktrace": f"Traceback ...\nPaymentError: {MESSAGE}",
            "frames": [("shop.pay", "charge", "shop/pay.py", 42, True)],
            "handled": False,
            "level": "error",
        }
    ]
    return reader


def _visit(client: TestClient, identity: Identity, pages: list[str], days: float = 30) -> str:
    token, link = identity.links.create("ed@example.com", ["checkout"], ["prod"], pages, days)
    opened = client.get(f"/s/{token}", follow_redirects=False)
    assert opened.status_code == 303
    return str(opened.headers["location"])


def test_a_link_opens_its_first_page_in_scope_and_counts_views(
    shared: FakeReader, commands: FakeCommands, identity: Identity
) -> None:
    client = TestClient(make_app(shared, commands, identity, MemoryAudit()))
    landing = _visit(client, identity, ["errors", "health"])
    assert landing == "/errors?app=checkout&env=prod"
    page = client.get(landing)
    assert page.status_code == 200
    assert "shared view, read-only" in page.text
    for hidden in ('href="/sql"', ">Alerts<", ">Usage<", ">Overview<", "Sign out"):
        assert hidden not in page.text, hidden
    assert '<option value="catalog"' not in page.text  # the app picker holds the link's apps
    client.get("/panels/errors?app=checkout&env=prod")  # polling is not a view
    [link] = identity.links.list()
    assert link.views == 1 and link.last_used is not None


def test_personal_data_is_masked_on_shared_pages_and_not_for_the_team(
    shared: FakeReader, commands: FakeCommands, identity: Identity
) -> None:
    client = TestClient(make_app(shared, commands, identity, MemoryAudit()))
    _visit(client, identity, ["errors"])
    page = client.get("/errors/g1?app=checkout&env=prod").text
    for personal in ("ann.lee@example.com", "user_id=4711", "acme-42"):  # not in a timestamp
        assert personal not in page, personal
    assert "card declined for •••" in page and "user_id=•••" in page
    assert 'value="resolve"' not in page and "/resolve" not in page  # no actions
    team = TestClient(client.app)
    sign_in_as(team, identity, "viewer")
    assert "ann.lee@example.com" in team.get("/errors/g1?app=checkout").text


def test_another_app_or_env_by_editing_the_url_is_refused(
    shared: FakeReader, commands: FakeCommands, identity: Identity
) -> None:
    client = TestClient(make_app(shared, commands, identity, MemoryAudit()))
    _visit(client, identity, ["overview", "errors"])
    asked = len(shared.asked)
    for path in (
        "/?app=catalog&env=prod",
        "/errors?app=checkout&env=preprod",
        "/?app=checkout&env=prod&compare=preprod",
        "/errors/g1?app=catalog&env=prod",
        "/usage?app=checkout&env=prod",  # a page the link does not name
        "/sql?q=SELECT+1",
        "/alerts",
    ):
        assert client.get(path, follow_redirects=False).status_code == 403, path
    assert len(shared.asked) == asked  # refused before reading anything
    filled = client.get("/errors", follow_redirects=False)  # no app: the link's is filled in
    assert (
        filled.status_code == 303 and filled.headers["location"] == "/errors?app=checkout&env=prod"
    )
    decided = client.post("/errors/g1/resolve", data={"app": "checkout"})
    assert decided.status_code == 403 and commands.sent == []


def test_expired_and_revoked_links_open_nothing(
    shared: FakeReader, commands: FakeCommands, tmp_path: Path
) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    identity = build_identity(tmp_path / "i.sqlite", AccessSettings(), FAST_HASH, lambda: now[0])
    client = TestClient(make_app(shared, commands, identity, MemoryAudit()))
    landing = _visit(client, identity, ["errors"], days=1)
    assert client.get(landing).status_code == 200
    now[0] += timedelta(days=1, seconds=1)
    assert client.get(landing, follow_redirects=False).headers["location"].startswith("/signin")
    token, link = identity.links.create("ed@example.com", ["checkout"], ["prod"], ["errors"])
    identity.links.revoke(link.id)
    refused = client.get(f"/s/{token}")
    assert refused.status_code == 404 and "was revoked" in refused.text
    gone = TestClient(client.app)
    gone.cookies.set("sr_share", identity.sign(token, "share"))  # a cookie from before
    assert gone.get(landing, follow_redirects=False).headers["location"].startswith("/signin")
