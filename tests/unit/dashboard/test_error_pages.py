"""The error groups list, a group's page, and the resolve / ignore / unresolve actions."""

from __future__ import annotations

from fastapi.testclient import TestClient
from shiftright_server.dashboard.commands import command, command_key, producer_settings
from shiftright_server.streams.grouping.keys import group_key

from tests.unit.dashboard.conftest import XSS, FakeCommands, FakeReader, group_row, minute_ago


def _listed(reader: FakeReader, **fields: object) -> None:
    row = {
        "group_id": "g1",
        "app": "checkout",
        "title": "KeyError: 'sku'",
        "culprit": "shop.cart in add",
        "status": "unresolved",
        "total": 40,
        "total_users": 7,
        "first_seen": minute_ago(600),
        "last_seen": minute_ago(2),
        "last_release": "1.4.2",
        "events": 12,
        "users": 3,
        "envs": ["preprod", "prod"],
    }
    row.update(fields)
    reader.answers["error_groups"] = [row]


def test_the_list_passes_its_filters_to_the_query_and_shows_badges(
    client: TestClient, reader: FakeReader
) -> None:
    _listed(reader)
    reader.answers["error_badges"] = [{"app": "checkout", "group_id": "g1", "kinds": ["regressed"]}]
    page = client.get("/errors?app=checkout&status=regressed&q=sku&release=1.4.2&sort=users")
    assert page.status_code == 200
    asked = dict(reader.asked)["error_groups"]
    assert {k: asked[k] for k in ("app", "status", "text", "release")} == {
        "app": "checkout",
        "status": "regressed",
        "text": "sku",
        "release": "1.4.2",
    }
    assert 'data-events="12">12<' in page.text
    assert '<span class="badge regressed">regressed</span>' in page.text
    assert "/errors/g1?app=checkout" in page.text  # the group link keeps app and range


def test_a_group_title_from_an_app_is_escaped_in_the_list_and_on_its_page(
    client: TestClient, reader: FakeReader
) -> None:
    _listed(reader, title=XSS)
    reader.answers["error_group"] = [group_row(title=XSS)]
    reader.answers["error_latest"] = [
        {
            "event_id": "e1",
            "ts": minute_ago(2),
            "env": "prod",
            "release": "1.4.2",
            "host": "web-1",
            "route": "/cart",
            "exception_type": "KeyError",
            "message": XSS,
            "stacktrace": "",
            "frames": [
                ("shop.cart", "add", "shop/cart.py", 42, True),
                ("flask", "run", "flask/app.py", 9, False),
            ],
            "handled": False,
            "level": "error",
        }
    ]
    for path in ("/errors", "/errors/g1"):
        page = client.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    page = client.get("/errors/g1").text
    assert '<li class="in-app"><span class="fn">add</span>' in page
    assert '<li class="library"><span class="fn">run</span>' in page


def test_resolve_sends_the_command_the_cli_sends_and_returns_to_the_group(
    client: TestClient, reader: FakeReader, commands: FakeCommands
) -> None:
    reader.answers["error_group"] = [group_row()]
    response = client.post(
        "/errors/g1/resolve?range=6h", data={"app": "checkout"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/errors/g1?range=6h&sent=resolve"
    [cmd] = commands.sent
    assert (cmd.app, cmd.group_id, cmd.action, cmd.actor) == (
        "checkout",
        "g1",
        "resolve",
        "admin@example.com",  # the signed-in person
    )
    assert "Resolve sent" in client.get(response.headers["location"]).text


def test_no_command_for_an_unknown_group_or_action(
    client: TestClient, commands: FakeCommands
) -> None:
    assert client.post("/errors/nope/resolve", data={"app": "checkout"}).status_code == 404
    reply = client.post("/errors/g1/delete", data={"app": "checkout"})
    assert reply.status_code == 404
    assert "&#39;delete&#39; is not an action" in reply.text
    assert client.post("/errors/g1/resolve", data={}).status_code == 400
    assert commands.sent == []


def test_commands_reach_the_partition_the_stream_worker_keeps_the_group_on() -> None:
    cmd = command("checkout", "g1", "ignore", actor="dashboard")
    assert command_key(cmd) == group_key(cmd)
    assert producer_settings("b:9092")["partitioner"] == "murmur2_random"


def test_a_group_page_compares_host_health_at_its_errors_with_the_usual(
    client: TestClient, reader: FakeReader
) -> None:
    reader.answers["error_group"] = [group_row()]
    reader.answers["health_at_errors"] = [
        {
            "metric": "system.cpu.utilization",
            "at_errors": 0.9,
            "usual": 0.36,
            "ratio": 2.5,
            "samples": 12,
        },
        {
            "metric": "system.memory.utilization",
            "at_errors": 0.5,
            "usual": 0.5,
            "ratio": 1.0,
            "samples": 12,
        },
    ]
    page = client.get("/errors/g1").text
    cpu = page[page.index('data-metric="system.cpu.utilization"') :].split("</tr>")[0]
    mem = page[page.index('data-metric="system.memory.utilization"') :].split("</tr>")[0]
    assert 'class="unusual"' in cpu and "×2.5" in cpu and "0.900" in cpu
    assert 'class="unusual"' not in mem
    asked = dict(reader.asked)["health_at_errors"]
    assert asked["group_id"] == "g1"


def test_ignore_can_end_after_a_while_or_after_more_errors(
    client: TestClient, reader: FakeReader, commands: FakeCommands
) -> None:
    reader.answers["error_group"] = [group_row()]
    form = {"app": "checkout", "ignore_for": "24h", "ignore_count": "50"}
    assert client.post("/errors/g1/ignore", data=form, follow_redirects=False).status_code == 303
    [cmd] = commands.sent
    assert cmd.action == "ignore" and cmd.ignore_until_count == 50
    assert cmd.ignore_until is not None
    assert 23.9 < (cmd.ignore_until - cmd.ts).total_seconds() / 3600 <= 24
    bad = client.post("/errors/g1/ignore", data={**form, "ignore_for": "forever-ish"})
    assert bad.status_code == 400 and "ignore_for=&#39;forever-ish&#39; is not one of" in bad.text
    assert client.post("/errors/g1/ignore", data={**form, "ignore_count": "-1"}).status_code == 400
    assert len(commands.sent) == 1


def test_the_sent_notice_names_only_a_real_action(client: TestClient, reader: FakeReader) -> None:
    reader.answers["error_group"] = [group_row()]
    assert "Resolve sent" in client.get("/errors/g1?sent=resolve").text
    assert "Call support" not in client.get("/errors/g1?sent=Call+support").text
