"""The pytest plugin (entry point ``pytest11``): ``pytest --shiftright`` (or ``shiftright =
true`` in the ini file) marks what the app under test emits while each test runs.

- In-process apps (Starlette/FastAPI, Flask, Django test clients through the SDK
  middleware, and direct SDK calls from the test): every request served and every event
  the process sends while the test runs carries its marks (:mod:`shiftright.testing`).
- A deployed app reached over HTTP: requests sent with httpx or requests get a W3C
  ``baggage`` header with the same marks, which the app's middleware honours outside
  production (or with ``--shiftright-token``). Other clients can send
  ``shiftright_baggage`` (a fixture) themselves.

The run id is ``--shiftright-run-id``, else ``SHIFTRIGHT_TEST_RUN_ID``, else a new one
(exported, so pytest-xdist workers share it); the commit is ``--shiftright-commit``, else
``SHIFTRIGHT_COMMIT``/``GITHUB_SHA``/``CI_COMMIT_SHA``, else ``git rev-parse HEAD``.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Generator
from typing import Any

import pytest

from shiftright import testing

RUN_ENV = "SHIFTRIGHT_TEST_RUN_ID"
COMMIT_ENVS = ("SHIFTRIGHT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA")
TOKEN_ENV = "SHIFTRIGHT_TEST_TOKEN"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shiftright", "mark the app's events as test traffic")
    group.addoption("--shiftright", action="store_true", help="mark events as origin=test")
    group.addoption("--shiftright-run-id", default="", help="the run id (default: a new one)")
    group.addoption("--shiftright-commit", default="", help="the commit (default: git HEAD)")
    group.addoption("--shiftright-token", default="", help="lets marks through in prod")
    parser.addini("shiftright", "mark events as origin=test (like --shiftright)", "bool", False)
    parser.addini("shiftright_patch_clients", "add baggage to httpx/requests", "bool", True)


def pytest_configure(config: pytest.Config) -> None:
    if not (config.getoption("--shiftright") or config.getini("shiftright")):
        return
    run_id = config.getoption("--shiftright-run-id") or os.environ.get(RUN_ENV, "")
    run_id = run_id or uuid.uuid4().hex[:16]
    os.environ[RUN_ENV] = run_id
    commit = config.getoption("--shiftright-commit") or _commit(str(config.rootpath))
    token = config.getoption("--shiftright-token") or os.environ.get(TOKEN_ENV, "")
    marker = Marker(run_id, commit, token, patch=bool(config.getini("shiftright_patch_clients")))
    config.pluginmanager.register(marker, "shiftright-marker")


def _commit(root: str) -> str:
    for name in COMMIT_ENVS:
        if os.environ.get(name):
            return os.environ[name]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


class Marker:
    """Registered when marking is on: sets each test's marks around its setup, call and
    teardown, and adds them to outgoing httpx/requests requests."""

    def __init__(self, run_id: str, commit: str, token: str, patch: bool) -> None:
        self.run_id, self.commit, self.token = run_id, commit, token
        self._undo: list[Callable[[], None]] = _patch_clients() if patch else []

    def mark_for(self, node_id: str) -> testing.MarkedTest:
        return testing.MarkedTest(node_id, self.run_id, self.commit, self.token)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, None]:
        testing.activate(self.mark_for(item.nodeid))
        try:
            yield
        finally:
            testing.activate(None)

    def pytest_report_header(self) -> str:
        return f"shiftright: marking test traffic, run {self.run_id} at {self.commit or '?'}"

    def pytest_unconfigure(self) -> None:
        for undo in self._undo:
            undo()


@pytest.fixture
def shiftright_baggage() -> str:
    """The running test's W3C baggage value ("" when marking is off), for HTTP clients the
    plugin does not patch: ``headers={"baggage": shiftright_baggage}``."""
    mark = testing.active()
    return mark.baggage() if mark is not None else ""


def with_baggage(existing: str | None) -> str | None:
    """A request's baggage header with the running test's marks added."""
    mark = testing.active()
    if mark is None:
        return existing
    return f"{existing},{mark.baggage()}" if existing else mark.baggage()


def _patch_clients() -> list[Callable[[], None]]:
    undo: list[Callable[[], None]] = []
    try:
        import httpx
    except ImportError:
        pass
    else:
        undo += [_wrap(httpx.Client, "build_request"), _wrap(httpx.AsyncClient, "build_request")]
    try:
        import requests
    except ImportError:
        pass
    else:
        undo.append(_wrap(requests.Session, "prepare_request"))
    return undo


def _wrap(cls: Any, method: str) -> Callable[[], None]:
    """Add the baggage to what ``cls.method`` builds (an httpx or requests request)."""
    own = method in vars(cls)
    original = getattr(cls, method)

    def build(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = original(self, *args, **kwargs)
        baggage = with_baggage(request.headers.get("baggage"))
        if baggage:
            request.headers["baggage"] = baggage
        return request

    setattr(cls, method, build)
    return lambda: setattr(cls, method, original) if own else delattr(cls, method)
