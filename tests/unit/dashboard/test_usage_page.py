"""The usage page: features by uses with users, customers, durations and origin split."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.settings import DashboardSettings, Settings

from tests.unit.dashboard.conftest import XSS, FakeCommands, FakeReader, minute_ago, sign_in_as


def test_features_show_uses_users_durations_and_origins(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["features"] = [
        {
            "app": "checkout",
            "env": "prod",
            "name": "cart.add",
            "uses": 1200,
            "failures": 4,
            "origins": {"user": 1100, "test": 100},
            "users": 310,
            "customers": 12,
            "q": [35.0, 80.25, 190.5],
        },
        {
            "app": "checkout",
            "env": "prod",
            "name": XSS,
            "uses": 3,
            "failures": 0,
            "origins": {"user": 3},
            "users": 1,
            "customers": 0,
            "q": [float("nan")] * 3,
        },
    ]
    reader.answers["feature_series"] = [
        {"app": "checkout", "env": "prod", "name": "cart.add", "t": minute_ago(4), "uses": 20}
    ]
    page = client.get("/usage?range=1h").text
    row = page[page.index('data-feature="cart.add"') :].split("</tr>")[0]
    assert 'data-uses="1200">1,200<' in row
    assert "35.0 / 80.2 / 190.5" in row  # p50 / p90 / p99
    assert "user 1,100" in row and "test 100" in row
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "– / – / –" in page  # a feature without durations


def test_one_release_filters_features_their_trend_origins_and_routes(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["release_features"] = [
        {
            "app": "checkout",
            "env": "prod",
            "name": "cart.add",
            "uses": 40,
            "failures": 1,
            "origins": {"user": 40},
            "users": 9,
            "customers": 2,
            "q": [10.0, 20.0, 30.0],
        }
    ]
    reader.answers["release_routes"] = [
        {
            "app": "checkout",
            "env": "prod",
            "route": "/cart/{id}",
            "uses": 40,
            "failures": 1,
            "users": 9,
            "p95": 25.0,
        }
    ]
    page = client.get("/usage?release=1.4.2").text
    asked = dict(reader.asked)
    for panel in ("release_features_top", "release_features", "feature_series", "release_routes"):
        assert asked[panel]["release"] == "1.4.2", panel
    assert 'data-feature="cart.add"' in page and "Release 1.4.2 only." in page
    route = page[page.index('data-route="/cart/{id}"') :].split("</tr>")[0]
    assert 'data-uses="40">40<' in route and "25.0" in route


def test_with_no_queries_beside_the_page_reads_its_panels_in_turn_and_shows_the_same(
    reader: FakeReader, commands: FakeCommands, identity: Identity, audit: MemoryAudit
) -> None:
    reader.answers["features"] = [
        {
            "app": "checkout",
            "env": "prod",
            "name": "pay",
            "uses": 7,
            "failures": 0,
            "origins": {"user": 7},
            "users": 3,
            "customers": 1,
            "q": [5.0, 9.0, 12.0],
        }
    ]
    reader.answers["routes"] = [
        {
            "app": "checkout",
            "env": "prod",
            "route": "/pay",
            "uses": 7,
            "failures": 0,
            "users": 3,
            "p95": 12.5,
        }
    ]
    threads: dict[int, set[str]] = {}
    real_query = reader.query

    def query(sql: str, params: dict[str, Any], settings: Any = None) -> Any:
        threads[beside].add(threading.current_thread().name)
        return real_query(sql, params, settings)

    reader.query = query  # type: ignore[method-assign]  # records which thread asked
    rows = {}
    for beside in (4, 0):
        threads[beside] = set()
        settings = Settings(dashboard=DashboardSettings(queries_beside=beside))
        app = create_app(settings, reader=reader, commands=commands, identity=identity, audit=audit)
        web = TestClient(app)  # no lifespan: both apps share the identity store
        sign_in_as(web, identity, "admin", f"admin{beside}@example.com")
        page = web.get("/usage?range=1h").text
        rows[beside] = page[page.index('data-route="/pay"') :].split("</tr>")[0]
    assert rows[0] == rows[4] and 'data-uses="7">7<' in rows[0]
    assert any(name.startswith("usage-query") for name in threads[4])  # routes beside
    assert not any(name.startswith("usage-query") for name in threads[0])
