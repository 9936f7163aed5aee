from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's notice about httpx; the client still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from tests.unit.gateway.fakes import Harness, build


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = build(tmp_path)
    yield made
    made.publisher.close(0)


@pytest.fixture
def client(harness: Harness) -> TestClient:
    return TestClient(harness.app, raise_server_exceptions=True)


@pytest.fixture
def token(harness: Harness) -> str:
    return harness.keys.create("checkout", "prod", "unit")[0]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
