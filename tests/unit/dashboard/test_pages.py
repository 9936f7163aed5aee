"""The pages against a fake warehouse: numbers, bad input, an unreachable warehouse, and
app data that tries to be HTML."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from tests.unit.dashboard.conftest import XSS, FakeReader, minute_ago

QUERY_RANGE = "range=1h"


def _usage(reader: FakeReader, app: str, env: str, requests: int, errors: int) -> None:
    reader.answers.setdefault("usage_series", []).append(
        {"app": app, "env": env, "t": minute_ago(3), "requests": requests, "failures": 0}
    )
    reader.answers.setdefault("error_series", []).append(
        {"app": app, "env": env, "t": minute_ago(3), "errors": errors}
    )


def test_overview_shows_request_rate_and_errors_per_thousand_requests(
    client: TestClient, reader: FakeReader
) -> None:
    _usage(reader, "checkout", "prod", requests=7200, errors=36)
    reader.answers["latency_total"] = [{"app": "checkout", "env": "prod", "q": [41.5, 230.25]}]
    page = client.get(f"/?{QUERY_RANGE}&app=checkout&env=prod")
    assert page.status_code == 200
    tile = page.text[page.text.index('data-env="prod"') :]
    assert 'data-metric="rate" data-requests="7200">2.00<' in tile  # 7,200 in one hour
    assert 'data-metric="errors_per_1000" data-errors="36">5.00<' in tile
    assert "41.5 <span" in tile and "230.2" in tile
    asked = dict(reader.asked)
    assert asked["usage_series"]["app"] == "checkout" and asked["usage_series"]["env"] == "prod"


def test_an_unknown_app_or_env_is_a_404_naming_what_exists(client: TestClient) -> None:
    page = client.get("/?app=billing")
    assert page.status_code == 404
    assert "unknown app &#39;billing&#39;; apps with data: &#39;checkout&#39;" in page.text
    page = client.get("/errors?app=checkout&env=staging")
    assert page.status_code == 404
    assert "unknown env &#39;staging&#39; for app &#39;checkout&#39;" in page.text


def test_a_malformed_range_is_a_400_that_says_why(client: TestClient) -> None:
    page = client.get("/errors?range=fortnight")
    assert page.status_code == 400
    assert "range=&#39;fortnight&#39; is not one of" in page.text
    assert client.get("/?from=not-a-time").status_code == 400


def test_unknown_filters_of_the_error_list_are_400s(client: TestClient) -> None:
    assert "status=&#39;lost&#39; is not one of" in client.get("/errors?status=lost").text
    assert client.get("/errors?sort=random").status_code == 400


def test_pages_render_with_a_banner_when_the_warehouse_is_unreachable(
    client: TestClient, reader: FakeReader
) -> None:
    reader.down = "Connection refused"
    for path in ("/", "/errors", "/errors/g1", "/panels/overview"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "Warehouse unreachable at <code>http://warehouse.invalid:8123</code>" in page.text
        assert "Connection refused" in page.text
    reader.down = ""
    assert "Warehouse unreachable" not in client.get("/").text  # recovers by itself


def test_app_strings_are_text_in_pages_and_inert_in_chart_data(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["scopes"] = [{"app": XSS, "env": "prod"}]
    reader.answers["changes"] = [
        {
            "app": XSS,
            "env": "prod",
            "ts": minute_ago(9),
            "change_type": "flag",
            "name": XSS,
            "value": "</script>",
        }
    ]
    page = client.get("/").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    payloads = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', page, re.S)
    assert payloads, "the tile's chart data is in the page"
    data = json.loads(payloads[0])
    assert data["markers"][0]["label"] == f"{XSS}=</script>"  # intact once parsed


def test_an_unknown_group_is_a_404(client: TestClient) -> None:
    page = client.get("/errors/nope")
    assert page.status_code == 404
    assert "no error group &#39;nope&#39;" in page.text


def test_live_ranges_poll_and_a_past_range_does_not(client: TestClient) -> None:
    live = client.get("/?range=15m").text
    assert 'hx-trigger="every 2000ms, visible-again from:body"' in live
    past = client.get("/?from=2026-01-01T00:00Z&to=2026-01-01T06:00Z").text
    assert "every 2000ms" not in past and "a past range: not refreshed" in past


def test_alerts_firing_now_show_on_their_app_and_env_tile(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["alerts_firing"] = [
        {
            "app": "checkout",
            "env": "prod",
            "rule": "checkout-errors",
            "fingerprint": "f1",
            "starts_at": minute_ago(3),
        }
    ]
    page = client.get("/").text
    prod = page[page.index('data-env="prod"') :].split("</header>")[0]
    preprod = page[page.index('data-env="preprod"') :].split("</header>")[0]
    assert 'title="checkout-errors">1 firing<' in prod
    assert "no alerts firing" in preprod


def test_compare_mode_draws_the_other_env_on_each_tile(
    client: TestClient, reader: FakeReader
) -> None:
    _usage(reader, "checkout", "prod", requests=600, errors=6)
    _usage(reader, "checkout", "preprod", requests=60, errors=3)
    page = client.get("/?range=1h&compare=preprod").text
    assert page.count('<article class="tile"') == 1  # prod, with preprod drawn on it
    assert "preprod 0.02" in page  # preprod's 60 requests in an hour, per second
    [payload] = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', page, re.S)
    chart = json.loads(payload)
    assert chart["compare_env"] == "preprod"
    assert sum(v or 0 for v in chart["compare"]["rate"]) == 1.0  # 60 requests / 60 s bucket
    missing = client.get("/?compare=staging")
    assert missing.status_code == 404 and "unknown env &#39;staging&#39;" in missing.text


def test_tiles_show_open_sessions_and_throughput_now(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["gauges"] = [
        {"app": "checkout", "env": "prod", "metric": "app.sessions.open", "value": 1234.0},
        {
            "app": "checkout",
            "env": "prod",
            "metric": "app.throughput.requests_per_second",
            "value": 56.71,
        },
    ]
    page = client.get("/").text
    prod = page[page.index('data-env="prod"') :].split("</header>")[0]
    assert '<span data-gauge="sessions">1,234 open sessions</span>' in prod
    assert '<span data-gauge="throughput">56.7 req/s served</span>' in prod
