"""QA meets production against the real warehouse: the sample shop's own suite run under
the pytest plugin (in-process, and over HTTP against its preprod served by uvicorn in
another process), simulated prod traffic, and each QA view, CLI report and the release
gate checked against results computed by hand (docs/qa.md)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shiftright_server.infra.cli import app as cli_app
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.settings import Settings, to_env
from typer.testing import CliRunner

from tests.builders import iso
from tests.integration import qa_data as d
from tests.integration.conftest import Sql, fresh_settings, sql_on, wait_for
from tests.integration.warehouse_fixture import free_port

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "tests/qa_sample/sample_shop.py::test_"
SHOP, GATE = "qa-shop", "qa-gate"


def _serving(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run_sample_suite(tmp: Path) -> list[dict[str, Any]]:
    """The shop's suite under ``--shiftright``; its preprod is the shop served by uvicorn
    (env preprod) in a process of its own. Every event both wrote."""
    events, preprod = tmp / "events.jsonl", tmp / "preprod.jsonl"
    port = free_port()
    serve = [sys.executable, "-m", "tests.qa_sample.serve", str(port), str(preprod)]
    server = subprocess.Popen(serve, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _serving(port) or server.poll() is not None, 30, "preprod to start", 0.05)
        assert server.poll() is None, "preprod exited at start"
        env = {**os.environ, "QA_SAMPLE_EVENTS": str(events)}
        env["QA_SAMPLE_PREPROD"] = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "pytest", SAMPLE[:-7], "-o", "python_files=sample_*.py"]
        command += ["-p", "no:cacheprovider", "-q", "--shiftright", "--shiftright-run-id=run-1"]
        command += ["--shiftright-commit=c0ffee"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        server.terminate()
        server.wait(30)
    lines = events.read_text().splitlines() + preprod.read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def sample_events(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _run_sample_suite(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def qa(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A database of its own (no Kafka: rows are stored as the sink stores them)."""
    made = fresh_settings("127.0.0.1:9", clickhouse_url, tmp_path_factory.mktemp("state"))
    apply_schema(made)
    return made


NOW = datetime.now(UTC).replace(microsecond=0)


def ago(minutes: float = 0, days: float = 0) -> datetime:
    return NOW - timedelta(minutes=minutes, days=days)


def _prod_and_preprod(sample: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The suite's events (as if run two hours ago), an older run, customers in prod on
    2.0.0 (deployed 90 minutes ago) and on 1.9.0 (40 days ago), people in preprod."""
    shifted = [dict(e, ts=iso(ago(120))) for e in sample]
    older = d.tested(ago(days=3), SHOP, "test", "1.9.0", "GET /products/{sku}", "run-0", "x")
    older["attributes"]["test.case.name"] = f"{SAMPLE}product_page"
    prod: list[dict[str, Any]] = [d.deploy(ago(90), SHOP, "prod", "2.0.0")]
    for i in range(10):
        prod.append(_prod(ago(60), i, "GET /products/{sku}", f"u{i % 4}", f"c{i % 2}"))
    for i in range(8):
        prod.append(_prod(ago(59), i, "GET /search", f"s{i % 5}", f"c{i % 3}", i == 0))
    for i in range(5):
        prod.append(_prod(ago(58), i, "POST /checkout", f"u{i % 2}", "c1", i < 2))
    prod += [_prod(ago(57), i, "POST /cart/{sku}", "u1", "") for i in range(3)]
    prod += [_prod(ago(56), i, "GET /wishlist", "w1", "") for i in range(2)]
    prod += d.requests(50, ago(days=40), SHOP, "prod", "1.9.0", "GET /legacy")
    prod.append(d.error(ago(50), SHOP, "prod", "2.0.0", "/search", "GET"))
    prod += [d.error(ago(45), SHOP, "prod", "2.0.0", "/checkout", "POST") for _ in range(2)]
    prod.append(d.error(ago(44), SHOP, "prod", "2.0.0", "/wishlist", ""))  # no method known
    people = [d.request(ago(180), SHOP, "preprod", "2.0.0", "GET /search")]
    people.append(d.request(ago(30), SHOP, "preprod", "2.0.0", "GET /wishlist"))
    return [*shifted, older, *prod, *people]


def _prod(start: datetime, i: int, name: str, user: str, customer: str, fail: bool = False) -> Any:
    fields = {"user_id": user, "customer_id": customer, "status_code": 500 if fail else 200}
    return d.request(start + timedelta(seconds=i), SHOP, "prod", "2.0.0", name, **fields)


def _error_groups() -> list[tuple[datetime, str, str, str, str, str]]:
    return [
        (ago(50), SHOP, "prod", "2.0.0", "/search", "g-search"),  # preprod served /search
        (ago(180), SHOP, "preprod", "2.0.0", "/checkout", "g-checkout"),  # seen first there
        (ago(40), SHOP, "prod", "2.0.0", "/checkout", "g-checkout"),
        (ago(35), SHOP, "prod", "2.0.0", "/wishlist", "g-wishlist"),  # served there later
        (ago(100), SHOP, "preprod", "2.0.0", "/cart/{sku}", "g-preprod"),  # never in prod
    ]


@pytest.fixture(scope="module")
def shop(qa: Settings, sample_events: list[dict[str, Any]]) -> Sql:
    client = get_client(qa.clickhouse, database=qa.clickhouse.database)
    d.store(client, _prod_and_preprod(sample_events) + _releases())
    d.store_grouped(client, _error_groups() + _release_groups())
    return sql_on(qa)


# -- the releases the gate judges (app qa-gate, preprod) ------------------------------------
def _minute(hours: float) -> datetime:
    at = NOW - timedelta(hours=hours)
    return at.replace(second=0)


def _release(
    hours: float, release: str, failures: int = 2, slow_ms: float = 100.0, env: str = "preprod"
) -> list[dict[str, Any]]:
    """100 requests of GET /a within one minute: 90 at 10 ms, 10 at ``slow_ms``."""
    start = _minute(hours)
    return [
        d.request(
            start + timedelta(milliseconds=500 * i),
            GATE,
            env,
            release,
            "GET /a",
            duration_ms=10.0 if i < 90 else slow_ms,
            status_code=500 if i < failures else 200,
        )
        for i in range(100)
    ]


def _releases() -> list[dict[str, Any]]:
    base = _release(5, "1.0") + [d.health(_minute(5), GATE, "preprod", "1.0", 1.0, 100 * 2**20)]
    prod = [dict(e, duration_ms=10.0) for e in _release(4.5, "1.0", failures=1, env="prod")[:50]]
    good = _release(4, "2.0-good") + [
        d.health(_minute(4), GATE, "preprod", "2.0-good", 1.11, 111 * 2**20)
    ]
    good += d.requests(
        10, _minute(4) + timedelta(seconds=50), GATE, "preprod", "2.0-good", "GET /b"
    )
    good.append(d.tested(_minute(4), GATE, "preprod", "2.0-good", "GET /b", "run-5", "t::b"))
    untested = _release(3, "2.0-untested")
    untested += d.requests(
        10, _minute(3) + timedelta(seconds=50), GATE, "preprod", "2.0-untested", "GET /c"
    )
    return [
        *base,
        *prod,
        *good,
        *_release(3.5, "2.0-errors"),
        *_release(3.4, "2.0-rate", failures=10),
        *_release(3.3, "2.0-slow", slow_ms=300.0),
        *untested,
    ]


def _release_groups() -> list[tuple[datetime, str, str, str, str, str]]:
    return [
        (_minute(5), GATE, "preprod", "1.0", "/a", "g-old"),
        (_minute(4), GATE, "preprod", "2.0-good", "/a", "g-old"),
        (_minute(3.5), GATE, "preprod", "2.0-errors", "/a", "g-new"),
    ]


# -- marking ----------------------------------------------------------------------------------
def test_the_suite_marks_in_process_and_preprod_traffic_with_its_tests(
    sample_events: list[dict[str, Any]],
) -> None:
    marks = {
        (e["env"], e["kind"], e.get("name", ""), e["origin"], e["attributes"]["test.case.name"])
        for e in sample_events
    }
    assert marks == {
        ("test", "usage", "GET /products/{sku}", "test", f"{SAMPLE}product_page"),
        ("test", "usage", "POST /cart/{sku}", "test", f"{SAMPLE}add_to_cart"),
        ("test", "usage", "POST /checkout", "test", f"{SAMPLE}declined_card_fails_checkout"),
        ("test", "error", "", "test", f"{SAMPLE}declined_card_fails_checkout"),
        ("test", "usage", "GET /reports/<name>", "test", f"{SAMPLE}daily_report"),
        # served by the preprod process, marked by the baggage header the plugin added
        (
            "preprod",
            "usage",
            "GET /products/{sku}",
            "test",
            f"{SAMPLE}preprod_product_page_over_http",
        ),
    }
    runs = {
        (e["attributes"]["test.suite.run.id"], e["attributes"]["vcs.ref.head.revision"])
        for e in sample_events
    }
    assert runs == {("run-1", "c0ffee")}


def test_the_test_identity_is_stored_with_the_events(shop: Sql) -> None:
    rows = shop(
        f"""SELECT env, name, test_id, test_run, test_commit FROM events_usage
            WHERE app = '{SHOP}' AND origin = 'test' AND test_run = 'run-1' ORDER BY env, name"""
    )
    assert rows[-1] == (
        "test",
        "POST /checkout",
        f"{SAMPLE}declined_card_fails_checkout",
        "run-1",
        "c0ffee",
    )
    assert len(rows) == 6 and rows[0][:2] == ("preprod", "GET /products/{sku}")
    assert shop(f"SELECT test_id FROM events_error WHERE app = '{SHOP}' AND origin = 'test'") == [
        (f"{SAMPLE}declined_card_fails_checkout",)
    ]


# -- the views ----------------------------------------------------------------------------------
def test_untested_hot_paths_rank_never_tested_prod_features_first(shop: Sql) -> None:
    rows = shop(
        f"""SELECT name, uses, users, customers, failures, errors, test_runs, tests
            FROM qa_untested(days = 30) WHERE app = '{SHOP}'"""
    )
    assert rows == [
        ("GET /search", 8, 5, 3, 1, 1, 0, 0),
        ("GET /wishlist", 2, 1, 0, 0, 1, 0, 0),
        ("GET /products/{sku}", 10, 4, 2, 0, 0, 2, 2),  # this run and an older one
        ("POST /checkout", 5, 2, 1, 2, 2, 1, 1),
        ("POST /cart/{sku}", 3, 1, 0, 0, 0, 1, 1),
    ]  # GET /legacy was used 40 days ago only


def test_tested_but_unused_lists_what_no_customer_used(shop: Sql) -> None:
    rows = shop(f"SELECT name, test_runs, tests FROM qa_unused(days = 30) WHERE app = '{SHOP}'")
    assert rows == [("GET /reports/<name>", 1, 1)]


def test_preprod_gaps_name_features_and_error_groups_preprod_missed(shop: Sql) -> None:
    features = shop(f"SELECT release, name, uses, users FROM qa_gap_features WHERE app = '{SHOP}'")
    assert features == [
        # 2.0.0 reached prod 90 minutes ago: preprod had exercised GET /products (the
        # HTTP test) and GET /search (a person) before; GET /wishlist only after
        ("2.0.0", "POST /checkout", 5, 2),
        ("2.0.0", "POST /cart/{sku}", 3, 1),
        ("2.0.0", "GET /wishlist", 2, 1),
        ("1.9.0", "GET /legacy", 50, 0),
    ]
    errors = shop(
        f"""SELECT group_id, kind, route, prod_errors, preprod_errors, lead_time_s
            FROM qa_error_gaps WHERE app = '{SHOP}'"""
    )
    assert errors == [
        ("g-checkout", "reached_prod", "/checkout", 1, 1, 140 * 60),
        ("g-search", "missed", "/search", 1, 0, None),
    ]


def test_release_health_puts_each_release_next_to_the_previous_one(shop: Sql) -> None:
    rows = shop(
        f"""SELECT env, release, requests, round(error_rate, 4), p95_ms,
                   round(cpu_ms_per_request, 1), round(memory_mb_per_request, 3),
                   previous_release, round(previous_error_rate, 4), previous_p95_ms
            FROM qa_release_health WHERE app = '{GATE}' AND release IN ('1.0', '2.0-good')"""
    )
    assert rows == [
        ("preprod", "1.0", 100, 0.02, 100.0, 600.0, 1.0, "", None, None),
        ("prod", "1.0", 50, 0.02, 10.0, None, None, "", None, None),  # no health from prod
        ("preprod", "2.0-good", 111, 0.018, 100.0, 600.0, 1.0, "1.0", 0.02, 100.0),
    ]


# -- the CLI and the gate -----------------------------------------------------------------------
def cli(settings: Settings, *args: str) -> Any:
    env = to_env(settings) | {"COLUMNS": "250"}
    return CliRunner().invoke(cli_app, list(args), env=env)


def test_the_qa_reports_print_readable_tables(qa: Settings, shop: Sql) -> None:
    untested = cli(qa, "qa", "untested", "--app", SHOP)
    assert untested.exit_code == 0, untested.output
    lines = [line for line in untested.output.splitlines() if "/" in line]
    assert "GET /search" in lines[0] and "GET /wishlist" in lines[1], untested.output
    gaps = cli(qa, "qa", "gaps", "--app", SHOP)
    assert "POST /checkout" in gaps.output and "reached_prod" in gaps.output, gaps.output
    assert "GET /legacy" not in gaps.output  # reached prod before the last 30 days
    unused = cli(qa, "qa", "unused", "--app", SHOP)
    assert "GET /reports/<name>" in unused.output, unused.output
    releases = cli(qa, "qa", "releases", "--app", GATE)
    assert releases.exit_code == 0 and "2.0-slow" in releases.output, releases.output


@pytest.mark.parametrize(
    ("release", "reason"),
    [
        ("2.0-errors", "new error group KeyError in /a (g-new): 1 errors"),
        ("2.0-rate", "error rate 10.00% vs 2.00% on 1.0 (+8.00 pp, limit +1.00 pp)"),
        ("2.0-slow", "p95 latency 300.0 ms vs 100.0 ms on 1.0 (+200%, limit +20%)"),
        ("2.0-untested", "untested new route GET /c: 10 requests"),
        ("2.0-missing", "no requests of 2.0-missing in preprod"),
    ],
)
def test_the_gate_fails_a_release_for_each_reason(
    qa: Settings, shop: Sql, release: str, reason: str
) -> None:
    done = cli(qa, "qa", "gate", "--app", GATE, "--release", release, "--baseline", "1.0")
    assert done.exit_code == 1, done.output
    assert f"## shiftright QA gate: qa-gate {release} in preprod: **FAIL**" in done.output
    reasons = [line[2:] for line in done.output.splitlines() if line.startswith("- ")]
    assert [r.replace("\\", "") for r in reasons] == [reason], done.output
    stored = shop(
        f"""SELECT value, previous_value, origin FROM events_change
            WHERE change_type = 'gate' AND app = '{GATE}' AND release = '{release}'"""
    )
    assert stored == [("fail", "1.0", "test")]


def test_the_gate_passes_a_healthy_release_against_the_previous_one(
    qa: Settings, shop: Sql, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    done = cli(qa, "qa", "gate", "--app", GATE, "--release", "2.0-good", "--summary", str(summary))
    assert done.exit_code == 0, done.output
    assert "**PASS**" in done.output and "Baseline: 1.0" in done.output
    assert "| error rate | 2.00% | 1.80% |" in done.output
    assert summary.read_text() == done.output
    timeline = shop(
        f"""SELECT name, value FROM events_change
            WHERE change_type = 'gate' AND app = '{GATE}' AND release = '2.0-good'"""
    )
    assert timeline == [("qa gate 2.0-good", "pass")]


def test_the_dashboard_qa_page_reads_the_views(qa: Settings, shop: Sql) -> None:
    from fastapi.testclient import TestClient
    from shiftright_server.dashboard.app import create_app
    from shiftright_server.infra.access.identity import open_identity

    from tests.signin import sign_in_as

    with TestClient(create_app(qa)) as client:
        sign_in_as(client, open_identity(qa), "viewer")
        page = client.get(f"/qa?app={SHOP}")
        gate = client.get(f"/qa?app={GATE}").text
    assert page.status_code == 200, page.text
    first = page.text[page.text.index("<tbody>") :].split("</tr>")[0]
    assert 'data-feature="GET /search"' in first and "never tested" in first
    assert 'data-gap="POST /checkout"' in page.text and 'data-group="g-checkout"' in page.text
    assert 'data-unused="GET /reports/&lt;name&gt;"' in page.text
    assert 'data-release="2.0-slow"' in gate and '<td class="n worse">300.0</td>' in gate


def test_import_coverage_names_the_tests_that_ran_each_failing_prod_line(
    qa: Settings, shop: Sql, sample_events: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The shop's checkout test run under coverage.py with per-test contexts; its error
    seen in prod, and another whose failing line no test ran."""
    rc = tmp_path / "coveragerc"
    rc.write_text("[run]\ndynamic_context = test_function\n")
    data = tmp_path / ".coverage"
    command = [sys.executable, "-m", "coverage", "run", f"--rcfile={rc}", f"--data-file={data}"]
    command += ["-m", "pytest", SAMPLE[:-7], "-o", "python_files=sample_*.py", "-q"]
    command += ["-p", "no:cacheprovider", "-k", "declined"]
    env = {**os.environ, "QA_SAMPLE_EVENTS": str(tmp_path / "events.jsonl")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    [seen] = [e for e in sample_events if e["kind"] == "error"]
    in_prod = dict(seen, app="qa-cov", env="prod", origin="user", attributes={})
    in_prod["event_id"] = str(uuid.uuid4())
    frames = [dict(f, lineno=1000) for f in seen["frames"]]
    unseen = dict(in_prod, event_id=str(uuid.uuid4()), route="/refund", frames=frames)
    d.store(get_client(qa.clickhouse, database=qa.clickhouse.database), [in_prod, unseen])
    report = cli(qa, "import", "coverage", str(data), "--app", "qa-cov", "--format", "json")
    assert report.exit_code == 0, report.output
    found = [json.loads(line) for line in report.output.splitlines()]
    assert [(f["route"], f["tests"]) for f in found] == [
        ("/refund", []),
        ("/checkout", ["tests.qa_sample.sample_shop.test_declined_card_fails_checkout"]),
    ]
    assert found[1]["failing_line"].startswith("tests.qa_sample.shop:")
