"""Test traffic, marked: the pytest plugin run over the sample shop's own suite, in-process
marks through each framework's middleware, and marks carried in a W3C baggage header,
honoured outside production or with the app's token only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiftright
from shiftright import testing
from shiftright.testing import COMMIT, RUN_ID, SYNTHETIC, TEST_ID, MarkedTest

from tests.qa_sample import shop
from tests.unit.sdk.conftest import SDK

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = "tests/qa_sample/sample_shop.py"
MARK = MarkedTest("tests/test_x.py::test_y[a b,c]", "run-7", "c0ffee")


@pytest.fixture
def marked() -> Iterator[MarkedTest]:
    testing.activate(MARK)
    try:
        yield MARK
    finally:
        testing.activate(None)


def run_sample(tmp_path: Path, *options: str, select: str = "") -> list[dict[str, Any]]:
    """Run the shop's own suite (not its preprod test) in a subprocess; its events."""
    events = tmp_path / "events.jsonl"
    command = [sys.executable, "-m", "pytest", SAMPLE, "-o", "python_files=sample_*.py"]
    command += ["-p", "no:cacheprovider", "-q", "-k", f"{select} not preprod", *options]
    env = {"QA_SAMPLE_EVENTS": str(events), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in events.read_text().splitlines()]


def test_the_plugin_marks_each_event_with_the_test_that_caused_it(tmp_path: Path) -> None:
    # the ini option (tests/integration/test_qa.py runs the same suite with --shiftright)
    events = run_sample(tmp_path, "-o", "shiftright=true", "--shiftright-run-id", "run-42")
    usage = [e for e in events if e["kind"] == "usage"]
    by_route = {(u["method"], u["route"], u["attributes"][TEST_ID]) for u in usage}
    sample = f"{SAMPLE}::test_"
    assert by_route == {
        ("GET", "/products/{sku}", f"{sample}product_page"),
        ("POST", "/cart/{sku}", f"{sample}add_to_cart"),
        ("POST", "/checkout", f"{sample}declined_card_fails_checkout"),
        ("GET", "/reports/<name>", f"{sample}daily_report"),
    }
    [error] = [e for e in events if e["kind"] == "error"]
    assert error["exception_type"] == "tests.qa_sample.shop.PaymentDeclined"
    assert error["attributes"][TEST_ID] == f"{sample}declined_card_fails_checkout"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    for event in events:
        assert event["origin"] == "test" and event["attributes"][SYNTHETIC] == "test"
        assert event["attributes"][RUN_ID] == "run-42"
        assert event["attributes"][COMMIT] == head.stdout.strip()


def test_without_the_option_the_sample_suite_sends_user_traffic(tmp_path: Path) -> None:
    events = run_sample(tmp_path, select="product_page and")
    assert [(e["origin"], TEST_ID in e["attributes"]) for e in events] == [("user", False)]


def _starlette_get(path: str, headers: dict[str, str] | None = None) -> int:
    from starlette.testclient import TestClient

    with TestClient(shop.api(), raise_server_exceptions=False) as client:
        return int(client.get(path, headers=headers or {}).status_code)


def test_starlette_and_flask_requests_during_a_test_are_marked(sdk: SDK, marked: Any) -> None:
    sdk.init()
    assert _starlette_get("/products/p-1") == 200
    assert shop.reports().test_client().get("/reports/weekly").status_code == 200
    testing.activate(None)
    assert _starlette_get("/products/p-2") == 200
    marks = [(e["route"], e["origin"], e["attributes"].get(TEST_ID, "")) for e in sdk.events()]
    assert sorted(marks) == [
        ("/products/{sku}", "test", MARK.test_id),
        ("/products/{sku}", "user", ""),
        ("/reports/<name>", "test", MARK.test_id),
    ]


def test_an_app_can_mark_its_own_events_as_test_traffic(sdk: SDK) -> None:
    sdk.init()
    with shiftright.scope(**{SYNTHETIC: "test", TEST_ID: "t::direct"}):
        shiftright.track("report.exported")
    shiftright.track("report.exported")
    assert [(e["origin"], e["attributes"].get(TEST_ID)) for e in sdk.events()] == [
        ("test", "t::direct"),
        ("user", None),
    ]


@pytest.mark.parametrize(
    ("env", "token", "sent_token", "origin"),
    [
        ("preprod", "", "", "test"),  # outside production a mark is honoured
        ("prod", "", "", "user"),  # in production it needs the app's token...
        ("prod", "s3cret", "guess", "user"),  # ...the right one
        ("prod", "s3cret", "s3cret", "test"),
    ],
)
def test_a_baggage_mark_is_honoured_outside_prod_or_with_the_token(
    sdk: SDK, env: str, token: str, sent_token: str, origin: str
) -> None:
    shiftright.init("checkout", env, kafka="fake:9092", transport=sdk.factory, test_token=token)
    baggage = MarkedTest("t::remote", "run-9", "abc", sent_token).baggage()
    assert _starlette_get("/products/p-3", {"baggage": f"other=1,{baggage}"}) == 200
    [event] = sdk.events("usage")
    assert event["origin"] == origin
    stored = {k: v for k, v in event["attributes"].items() if k in (TEST_ID, RUN_ID, COMMIT)}
    assert stored == (
        {TEST_ID: "t::remote", RUN_ID: "run-9", COMMIT: "abc"} if origin == "test" else {}
    )
    assert testing.TOKEN not in event["attributes"] and "s3cret" not in json.dumps(event)
    from starlette.testclient import TestClient

    with TestClient(shop.api(), raise_server_exceptions=False) as client:
        failed = client.post("/checkout?card=declined", headers={"baggage": baggage})
    assert failed.status_code == 500
    [error] = sdk.events("error")
    assert error["origin"] == origin and "s3cret" not in json.dumps(error)
    assert TEST_ID in error["attributes"]["http.request.header.baggage"]  # the rest is kept


def test_baggage_round_trips_node_ids_with_separators() -> None:
    parsed = testing.parse_baggage("a=1;prop=x, " + MARK.baggage())
    assert parsed[TEST_ID] == MARK.test_id and parsed["a"] == "1"
    assert testing.parse_baggage("x" * 9000) == {}


def test_the_plugin_adds_baggage_to_httpx_and_requests(marked: Any) -> None:
    import httpx
    import requests
    from shiftright.pytest_plugin import _patch_clients

    undo = _patch_clients()
    try:
        built = httpx.Client().build_request("GET", "http://preprod.test/x")
        prepared = requests.Session().prepare_request(
            requests.Request("GET", "http://preprod.test/x", headers={"baggage": "k=v"})
        )
    finally:
        for step in undo:
            step()
    assert testing.parse_baggage(built.headers["baggage"])[TEST_ID] == MARK.test_id
    assert str(prepared.headers["baggage"]).startswith("k=v,")
    assert "baggage" not in httpx.Client().build_request("GET", "http://preprod.test/x").headers


def test_while_a_test_runs_events_from_any_thread_are_marked(sdk: SDK, marked: Any) -> None:
    import threading

    sdk.init()
    worker = threading.Thread(target=shiftright.track, args=("report.rendered",))
    worker.start()
    worker.join(5)
    testing.activate(None)
    shiftright.track("report.rendered")
    assert [(e["origin"], e["attributes"].get(TEST_ID, "")) for e in sdk.events()] == [
        ("test", MARK.test_id),
        ("user", ""),
    ]


def test_fastapi_requests_and_their_handlers_thread_pool_events_are_marked(
    sdk: SDK, marked: Any
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from shiftright.asgi import ShiftrightMiddleware

    sdk.init()
    app = FastAPI()
    app.add_middleware(ShiftrightMiddleware)

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:  # sync: runs in a thread pool
        shiftright.track("order.viewed")
        return {"id": order_id}

    with TestClient(app) as client:
        assert client.get("/orders/7").status_code == 200
    marks = sorted((e["name"], e["origin"], e["attributes"][TEST_ID]) for e in sdk.events())
    assert marks == [
        ("GET /orders/{order_id}", "test", MARK.test_id),
        ("order.viewed", "test", MARK.test_id),
    ]
