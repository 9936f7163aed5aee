"""Compare mode on the usage, health and errors pages: the compared env's series ride
along dashed on the same charts, and an env the app does not have is a 404."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.unit.dashboard.conftest import FakeReader, minute_ago
from tests.unit.dashboard.test_error_pages import _listed


def _chart(page: str, element_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(page.split(f'id="{element_id}">')[1].split("</script>")[0])
    return data


def _feature(env: str, uses: int) -> dict[str, Any]:
    return {
        "app": "checkout",
        "env": env,
        "name": "cart.add",
        "uses": uses,
        "failures": 0,
        "users": 1,
        "customers": 1,
        "q": [1.0, 2.0, 3.0],
    }


def test_usage_draws_the_compared_envs_trend_of_each_feature_beside_it(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["features"] = [_feature("prod", 900), _feature("preprod", 40)]
    reader.answers["feature_series"] = [
        {"app": "checkout", "env": env, "name": "cart.add", "t": minute_ago(3), "uses": n}
        for env, n in (("prod", 30), ("preprod", 7))
    ]
    page = client.get("/usage?app=checkout&env=prod&compare=preprod&range=1h").text
    assert page.count('data-feature="cart.add"') == 1  # preprod rides along, not alone
    assert 'data-compare-uses="40">preprod 40<' in page
    chart = _chart(page, "feature-1-data")
    assert max(chart["uses"]) == 30 and max(chart["compare"]["uses"]) == 7
    assert chart["compare_env"] == "preprod"
    asked = dict(reader.asked)["features"]
    assert (asked["app"], asked["env"]) == ("checkout", "")  # both envs read at once


def test_health_charts_draw_the_compared_envs_hosts_dashed(
    client: TestClient, reader: FakeReader
) -> None:
    for env, host, cpu in (("prod", "web-1", 0.4), ("preprod", "pre-1", 0.9)):
        reader.answers.setdefault("hosts", []).append(
            {"app": "checkout", "env": env, "host": host, "last_minute": minute_ago(1)}
        )
        reader.answers.setdefault("host_series", []).append(
            {
                "app": "checkout",
                "env": env,
                "host": host,
                "t": minute_ago(1),
                "metric": "system.cpu.utilization",
                "value": cpu,
            }
        )
    page = client.get("/health?app=checkout&env=prod&compare=preprod&range=1h").text
    assert page.count('class="panel host-group"') == 1
    chart = _chart(page, "hosts-0-data")
    assert list(chart["system.cpu.utilization"]) == ["web-1"]
    assert list(chart["compare"]["system.cpu.utilization"]) == ["pre-1"]
    assert "comparing with" in page


def test_errors_draw_each_groups_errors_in_the_compared_env(
    client: TestClient, reader: FakeReader
) -> None:
    _listed(reader)
    reader.answers["error_group_series"] = [
        {"app": "checkout", "group_id": "g1", "t": minute_ago(2), "events": 5}
    ]
    page = client.get("/errors?app=checkout&env=prod&compare=preprod&range=1h").text
    series = [params["env"] for name, params in reader.asked if name == "error_group_series"]
    assert series == ["prod", "preprod"]
    chart = _chart(page, "group-1-data")
    assert chart["compare_env"] == "preprod" and max(chart["compare"]["events"]) == 5


def test_comparing_with_an_env_the_app_does_not_have_is_a_404(client: TestClient) -> None:
    for path in ("/usage", "/health", "/errors"):
        response = client.get(f"{path}?app=checkout&compare=staging")
        assert response.status_code == 404, path
        assert "staging" in response.text
