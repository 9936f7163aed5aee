"""The /qa page: never-tested features first and flagged, preprod gaps, releases with
preprod next to prod and what got worse, tested-but-unused features, gate decisions;
everything apps sent is escaped."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.unit.dashboard.conftest import XSS, FakeReader, minute_ago


def _release(env: str, release: str, previous: str, **measures: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"app": "checkout", "env": env, "release": release}
    row.update(first_seen=minute_ago(60), requests=100, error_rate=0.02, p95_ms=100.0)
    row.update(cpu_ms_per_request=5.0, memory_mb_per_request=0.5)
    row.update(measures, previous_release=previous)
    for name in ("requests", "error_rate", "p95_ms", "cpu_ms_per_request", "memory_mb_per_request"):
        row[f"previous_{name}"] = None if not previous else _release_base(name)
    return row


def _release_base(name: str) -> Any:
    return {"requests": 100, "error_rate": 0.02, "p95_ms": 100.0}.get(
        name, 5.0 if "cpu" in name else 0.5
    )


def _untested(name: str, uses: int, tests: int) -> dict[str, Any]:
    return {
        "app": "checkout",
        "name": name,
        "route": "",
        "uses": uses,
        "users": 3,
        "customers": 1,
        "failures": 0,
        "errors": 2,
        "test_runs": tests,
        "tests": tests,
        "last_tested": minute_ago(5) if tests else None,
    }


def test_the_qa_page_shows_every_view_and_escapes_what_apps_sent(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["qa_untested"] = [_untested(XSS, 40, 0), _untested("GET /cart", 90, 2)]
    reader.answers["qa_gap_features"] = [
        {
            "app": "checkout",
            "release": "2.0",
            "reached_prod": minute_ago(30),
            "name": "GET /wish",
            "route": "/wish",
            "uses": 7,
            "users": 2,
        }
    ]
    reader.answers["qa_error_gaps"] = [
        {
            "app": "checkout",
            "group_id": "g1",
            "title": XSS,
            "exception_type": "KeyError",
            "route": "/checkout",
            "kind": "reached_prod",
            "first_prod": minute_ago(10),
            "prod_release": "2.0",
            "prod_errors": 3,
            "preprod_errors": 1,
            "first_preprod": minute_ago(190),
            "lead_time_s": 10800,
        }
    ]
    reader.answers["qa_releases"] = [
        _release("preprod", "1.0", ""),
        _release("preprod", "2.0", "1.0", p95_ms=180.0),
        _release("prod", "2.0", "1.0"),
    ]
    reader.answers["qa_unused"] = [
        {
            "app": "checkout",
            "name": "GET /legacy-export",
            "route": "/legacy-export",
            "test_runs": 4,
            "tests": 2,
            "last_tested": minute_ago(3),
        }
    ]
    reader.answers["qa_gates"] = [
        {
            "ts": minute_ago(2),
            "app": "checkout",
            "env": "preprod",
            "release": "2.0",
            "decision": "fail",
            "baseline": "1.0",
            "description": XSS,
        }
    ]
    page = client.get("/qa?app=checkout&days=14").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    first = page[page.index("<tbody>") :].split("</tr>")[0]
    assert "never tested" in first and "never-tested" in first
    assert 'data-feature="GET /cart"' in page and "last 14 days" in page
    assert 'data-gap="GET /wish"' in page and "3.0 h" in page  # the lead time
    newest = page[page.index('data-release="2.0"') :].split("</tr>")[0]
    assert '<td class="n worse">180.0</td>' in newest  # preprod p95 grew 80 %
    assert newest.count("worse") == 1 and "<td>1.0</td>" in newest
    older = page[page.index('data-release="1.0"') :].split("</tr>")[0]
    assert "not there" in older  # 1.0 never reached prod
    assert 'data-unused="GET /legacy-export"' in page
    assert 'class="badge gate-fail">fail<' in page
    assert [p for n, p in reader.asked if n == "qa_untested"] == [
        {"app": "checkout", "days": 14, "limit": 50}
    ]


def test_without_data_the_page_says_what_is_missing(client: TestClient) -> None:
    page = client.get("/qa").text
    assert "No prod usage in the last 30 days." in page
    assert "No gate decision yet" in page


def test_days_out_of_range_are_refused(client: TestClient) -> None:
    assert client.get("/qa?days=0").status_code == 400
