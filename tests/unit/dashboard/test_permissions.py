"""Every page, panel and action passes the one permission check, before it reads anything."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.permissions import ACTION_KEY, Action, Check, check_permission
from shiftright_server.infra.settings import Settings

from tests.unit.dashboard.conftest import FakeCommands, FakeReader, group_row

GETS = [
    "/api/openapi.json",
    "/",
    "/panels/overview",
    "/health",
    "/panels/health",
    "/usage",
    "/panels/usage",
    "/errors",
    "/panels/errors",
    "/errors/g1",
    "/panels/errors/g1",
    "/alerts",
    "/panels/alerts",
    "/qa",
    "/sql?q=SELECT+1",
    "/sql.csv?q=SELECT+1",
]
POSTS = ["/errors/g1/resolve", "/errors/g1/ignore", "/errors/g1/unresolve"]


class Recording:
    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.checks: list[Check] = []

    def allows(self, request: Request, check: Check) -> bool:
        self.checks.append(check)
        return self.allow


def _client(policy: Recording, reader: FakeReader, commands: FakeCommands) -> TestClient:
    return TestClient(create_app(Settings(), reader=reader, commands=commands, policy=policy))


def test_every_route_declares_the_action_the_policy_is_asked_about() -> None:
    app = create_app(Settings(), reader=FakeReader(), commands=FakeCommands())
    operations = [
        (path, method, op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
    ]
    paths = {path.split("?")[0] for path in GETS} - {"/errors/g1", "/panels/errors/g1"}
    paths |= {"/errors/{group_id}", "/panels/errors/{group_id}", "/errors/{group_id}/{decision}"}
    paths |= {"/alerts/{rule}", "/alerts/rule-form", "/alerts/silences"}
    paths |= {"/alerts/silences/{silence_id}/expire"}
    assert {path for path, _, _ in operations} == paths
    undeclared = [(p, m) for p, m, op in operations if ACTION_KEY not in op]
    assert undeclared == []


def test_a_refusing_policy_gets_403_everywhere_and_nothing_is_read_or_sent(
    reader: FakeReader, commands: FakeCommands
) -> None:
    policy = Recording(allow=False)
    client = _client(policy, reader, commands)
    for path in GETS:
        response = client.get(path)
        assert response.status_code == 403, path
        action = "sql.run" if path.startswith("/sql") else "view"
        assert f"not allowed: {action}" in response.text
    for path in POSTS:
        response = client.post(path, data={"app": "checkout"})
        assert response.status_code == 403, path
        assert "not allowed: errors.decide" in response.text
    assert reader.asked == []
    assert commands.sent == []
    assert len(policy.checks) == len(GETS) + len(POSTS)


def test_the_policy_sees_the_action_route_and_resource(
    reader: FakeReader, commands: FakeCommands
) -> None:
    reader.answers["error_group"] = [group_row()]
    policy = Recording(allow=True)
    client = _client(policy, reader, commands)
    assert client.get("/").status_code == 200
    response = client.post("/errors/g1/resolve", data={"app": "checkout"}, follow_redirects=False)
    assert response.status_code == 303
    assert policy.checks == [
        Check(Action.VIEW, "/", {}),
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
