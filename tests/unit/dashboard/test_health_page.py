"""The health page: hosts per app × env with their latest values; silent hosts flagged."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.dashboard.conftest import XSS, FakeReader, minute_ago


def _host(reader: FakeReader, host: str, last: int, cpu: float) -> None:
    reader.answers.setdefault("hosts", []).append(
        {"app": "checkout", "env": "prod", "host": host, "last_minute": minute_ago(last)}
    )
    reader.answers.setdefault("host_series", []).append(
        {
            "app": "checkout",
            "env": "prod",
            "host": host,
            "metric": "system.cpu.utilization",
            "t": minute_ago(last),
            "value": cpu,
        }
    )


def test_hosts_show_their_latest_values_and_the_silent_ones_are_flagged(
    client: TestClient, reader: FakeReader
) -> None:
    _host(reader, "web-1", last=1, cpu=0.42)
    _host(reader, "web-2", last=20, cpu=0.97)
    page = client.get("/health?range=1h").text
    web1 = page[page.index('data-host="web-1"') :].split("</tr>")[0]
    web2 = page[page.index('data-host="web-2"') :].split("</tr>")[0]
    assert "42.0%" in web1 and "stopped reporting" not in web1
    assert "97.0%" in web2 and "stopped reporting" in web2


def test_host_names_from_apps_are_escaped(client: TestClient, reader: FakeReader) -> None:
    _host(reader, XSS, last=1, cpu=0.5)
    page = client.get("/health").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
