"""Every page, panel and action passes the one permission check, before it reads anything;
the policy table covers every route of the app's own route table, for every kind of
visitor."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.permissions import (
    Action,
    Check,
    check_permission,
    declared_action,
    route_table,
)
from shiftright_server.dashboard.policy import LEAST_ROLE
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.settings import Settings

from tests.unit.dashboard.conftest import FakeCommands, FakeReader, group_row, make_app, sign_in_as

#: What each action needs, written out here (not read from the policy) so a change to
#: the policy table is a change to this test too.
NEEDS: dict[Action, str | None] = {
    Action.PUBLIC: None,
    Action.UNSUBSCRIBE: None,
    Action.VIEW: "viewer",
    Action.VIEW_OVERVIEW: "viewer",
    Action.VIEW_USAGE: "viewer",
    Action.VIEW_ERRORS: "viewer",
    Action.VIEW_HEALTH: "viewer",
    Action.RUN_SQL: "viewer",
    Action.OWN_SUBSCRIPTIONS: "viewer",
    Action.OWN_TOKENS: "viewer",
    Action.DECIDE_ERRORS: "editor",
    Action.RULES_EDIT: "editor",
    Action.SILENCES_EDIT: "editor",
    Action.EDIT_FLAGS: "editor",
    Action.SHARE_LINKS: "editor",
    Action.MANAGE_USERS: "admin",
    Action.MANAGE_TOKENS: "admin",
    Action.INGEST_KEYS: "admin",
    Action.AUDIT: "admin",
}
SHAREABLE = {Action.VIEW_OVERVIEW, Action.VIEW_USAGE, Action.VIEW_ERRORS, Action.VIEW_HEALTH}
RANK = {"viewer": 0, "editor": 1, "admin": 2}
VISITORS = ("anonymous", "share_in_scope", "share_out_of_scope", "viewer", "editor", "admin")
PARAM_VALUES = {"group_id": "g1", "decision": "resolve", "rule": "r1"}


def routes(app: FastAPI) -> list[tuple[str, str, object]]:
    """(method, concrete path, route) for every route the app serves (signing out last)."""
    found = [
        (method, re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAM_VALUES.get(m[1], "x1"), path), route)
        for method, path, route in route_table(app.routes)
    ]
    return sorted(found, key=lambda found: found[1] == "/signout")


def expected(visitor: str, method: str, action: Action) -> str:
    """ok | signin (303 to /signin) | 401 | 403."""
    needs = NEEDS[action]
    if needs is None:
        return "ok"
    if visitor == "anonymous":
        return "signin" if method == "GET" else "401"
    if visitor.startswith("share"):
        shared = action in SHAREABLE and method == "GET" and visitor == "share_in_scope"
        return "ok" if shared else "403"
    return "ok" if RANK[visitor] >= RANK[needs] else "403"


def outcome(status: int, location: str) -> str:
    if status == 303 and location.startswith("/signin?next="):
        return "signin"
    return str(status) if status in (401, 403) else "ok"


@pytest.fixture
def app(reader: FakeReader, commands: FakeCommands, identity: Identity) -> FastAPI:
    return make_app(reader, commands, identity, MemoryAudit())


def visitor_client(app: FastAPI, identity: Identity, visitor: str) -> TestClient:
    client = TestClient(app)
    if visitor in RANK:
        sign_in_as(client, identity, visitor)
        return client
    client.cookies.set("sr_csrf", "seed-of-a-visitor")
    client.headers["X-CSRF-Token"] = identity.sign("seed-of-a-visitor", "csrf").rpartition(".")[2]
    if visitor.startswith("share"):
        apps = ["checkout"] if visitor == "share_in_scope" else ["catalog"]
        pages = ["overview", "usage", "errors", "health"]
        token, _ = identity.links.create("admin@example.com", apps, ["prod"], pages)
        client.cookies.set("sr_share", identity.sign(token, "share"))
    return client


def test_every_route_declares_an_action_the_policy_table_covers(app: FastAPI) -> None:
    table = routes(app)
    assert len(table) >= 20
    undeclared = [(m, p) for m, p, r in table if declared_action(r) is None]
    assert undeclared == []
    assert set(LEAST_ROLE) == set(Action) == set(NEEDS)
    assert {a: LEAST_ROLE[a] for a in Action} == NEEDS


@pytest.mark.parametrize("visitor", VISITORS)
def test_each_visitor_gets_what_the_table_says_on_every_route(
    app: FastAPI, identity: Identity, reader: FakeReader, visitor: str
) -> None:
    reader.answers["error_group"] = [group_row()]
    client = visitor_client(app, identity, visitor)
    wrong = []
    for method, path, route in routes(app):
        action = declared_action(route)
        assert action is not None
        response = client.request(
            method, path, params={"app": "checkout", "env": "prod"}, follow_redirects=False
        )
        got = outcome(response.status_code, response.headers.get("location", ""))
        if got != expected(visitor, method, action):
            wrong.append(
                f"{method} {path} ({action.value}): {got}, not {expected(visitor, method, action)}"
            )
    assert wrong == []


class Recording:
    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.checks: list[Check] = []

    def allows(self, request: Request, check: Check) -> bool:
        self.checks.append(check)
        return self.allow


@pytest.fixture
def recorded(
    reader: FakeReader, commands: FakeCommands, identity: Identity
) -> Iterator[tuple[Recording, TestClient]]:
    policy = Recording(allow=False)
    app = create_app(
        Settings(),
        reader=reader,
        commands=commands,
        identity=identity,
        audit=MemoryAudit(),
        policy=policy,
    )
    with TestClient(app) as client:
        sign_in_as(client, identity, "admin")
        yield policy, client


def test_a_refusing_policy_gets_403_everywhere_and_nothing_is_read_or_sent(
    reader: FakeReader, commands: FakeCommands, recorded: tuple[Recording, TestClient]
) -> None:
    policy, client = recorded
    gets = ["/", "/panels/overview", "/errors", "/errors/g1", "/alerts", "/sql?q=SELECT+1"]
    for path in gets:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "not allowed: " in response.text
    response = client.post("/errors/g1/resolve", data={"app": "checkout"})
    assert response.status_code == 403
    assert "not allowed: errors.decide" in response.text
    assert reader.asked == []
    assert commands.sent == []
    assert len(policy.checks) == len(gets) + 1


def test_the_policy_sees_the_action_route_and_resource(
    reader: FakeReader, recorded: tuple[Recording, TestClient]
) -> None:
    reader.answers["error_group"] = [group_row()]
    policy, client = recorded
    policy.allow = True
    assert client.get("/").status_code == 200
    response = client.post("/errors/g1/resolve", data={"app": "checkout"}, follow_redirects=False)
    assert response.status_code == 303
    assert policy.checks == [
        Check(Action.VIEW_OVERVIEW, "/", {}),
        Check(
            Action.DECIDE_ERRORS,
            "/errors/{group_id}/{decision}",
            {"group_id": "g1", "decision": "resolve"},
        ),
    ]


def test_a_route_that_declares_no_action_is_refused() -> None:
    router = APIRouter(dependencies=[Depends(check_permission)])

    @router.get("/forgotten")
    def forgotten() -> str:
        return "should not be served"

    app = FastAPI()
    app.include_router(router)
    app.state.policy = Recording(allow=True)
    response = TestClient(app).get("/forgotten")
    assert response.status_code == 403
    assert "declares no permission" in response.text
