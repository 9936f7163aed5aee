"""An app with no data in the range: the pages show how to send some (the SDK snippet
with the configured Kafka, the gateway curl with its address), named for the app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.unit.dashboard.conftest import FakeReader


@pytest.mark.parametrize("path", ["/?app=checkout&env=prod", "/usage?app=checkout", "/health"])
def test_a_page_with_no_data_shows_how_to_send_some(
    client: TestClient, reader: FakeReader, path: str
) -> None:
    page = client.get(path + ("&" if "?" in path else "?") + "range=15m").text
    assert "data-empty-state" in page
    assert 'shiftright.init(app="checkout"' in page and 'kafka="127.0.0.1:19092"' in page
    assert "curl -s 127.0.0.1:14318/v1/events" in page


def test_a_page_with_data_shows_no_empty_state(client: TestClient, reader: FakeReader) -> None:
    reader.answers["features"] = [
        {
            "app": "checkout",
            "env": "prod",
            "name": "cart.add",
            "uses": 3,
            "users": 1,
            "customers": 1,
            "failures": 0,
            "q": [10.0, 11.0, 12.0],
        }
    ]
    page = client.get("/usage?app=checkout&range=15m").text
    assert "data-empty-state" not in page
