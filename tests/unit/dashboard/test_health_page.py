"""The health page: hosts per app × env with their latest values; silent hosts flagged."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.settings import Settings

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import XSS, FakeCommands, FakeReader, minute_ago
from tests.unit.dashboard.desk_fixture import service_desk


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


HEALTH_RULES = """version: 1
rules:
- name: cpu-high
  kind: threshold
  scope: {app: checkout, env: prod, source: health}
  measure: avg:system.cpu.utilization
  threshold: 0.8
- name: any-app-load
  kind: threshold
  scope: {app: "*", env: "*", source: health}
  measure: max:system.cpu.load_average.1m
  threshold: 4
- name: catalog-cpu
  kind: threshold
  scope: {app: catalog, env: prod, source: health}
  measure: avg:system.cpu.utilization
  threshold: 0.5
- name: quiet-usage
  kind: threshold
  scope: {app: checkout, env: prod, source: usage}
  measure: count
  threshold: 1
"""


def test_threshold_rules_on_health_metrics_are_drawn_on_their_groups_charts(
    reader: FakeReader, identity: Identity
) -> None:
    desk, store, _ = service_desk()
    store.apply(HEALTH_RULES, "alice", "cli")
    _host(reader, "web-1", last=1, cpu=0.42)
    app = create_app(
        Settings(), reader=reader, commands=FakeCommands(), desk=desk, identity=identity
    )
    with TestClient(app) as web:
        sign_in_as(web, identity, "viewer")
        page = web.get("/health?range=1h").text
    chart = json.loads(page.split('id="hosts-0-data">')[1].split("</script>")[0])
    assert chart["thresholds"] == {
        "system.cpu.utilization": [{"value": 0.8, "label": "cpu-high > 0.8"}],
        "system.cpu.load_average.1m": [{"value": 4.0, "label": "any-app-load > 4"}],
    }
