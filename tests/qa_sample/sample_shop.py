"""The shop's own tests (collected as ``sample_*.py`` by the QA tests, never by the
project's suite). ``QA_SAMPLE_EVENTS`` names the file the SDK writes; with
``QA_SAMPLE_PREPROD`` set, one test calls that deployed preprod over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import shiftright

from tests.qa_sample import shop


@pytest.fixture(scope="session", autouse=True)
def sdk() -> Iterator[None]:
    shop.init_sdk("test", "2.0.0", Path(os.environ["QA_SAMPLE_EVENTS"]))
    yield
    assert shiftright.close(5) == 0


def test_product_page() -> None:
    from starlette.testclient import TestClient

    with TestClient(shop.api()) as client:
        assert client.get("/products/sku-1").json() == {"sku": "sku-1"}


def test_add_to_cart() -> None:
    from starlette.testclient import TestClient

    with TestClient(shop.api()) as client:
        assert client.post("/cart/sku-1", params={"user": "tester"}).status_code == 200
        assert client.post("/cart/sku-2", params={"user": "tester"}).status_code == 200


def test_declined_card_fails_checkout() -> None:
    from starlette.testclient import TestClient

    with TestClient(shop.api(), raise_server_exceptions=False) as client:
        assert client.post("/checkout", params={"card": "declined"}).status_code == 500


def test_daily_report() -> None:
    client = shop.reports().test_client()
    assert client.get("/reports/daily").json == {"report": "daily"}


def test_preprod_product_page_over_http() -> None:
    base = os.environ["QA_SAMPLE_PREPROD"]
    assert httpx.get(f"{base}/products/sku-9", timeout=10).status_code == 200
