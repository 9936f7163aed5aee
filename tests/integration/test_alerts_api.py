"""The alerting HTTP API as the gateway serves it (``infra.api.gateway.assemble``),
on the real broker and warehouse: rules PUT/GET round trip, 422 by line and field,
silences, alerts, and who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from shiftright_server.infra.api.gateway import assemble
from shiftright_server.infra.api.tokens import open_tokens
from shiftright_server.infra.settings import Settings
from shiftright_server.streams.alerting.service import open_store

from tests.integration.test_rules_cli import EXAMPLE, plant_alerts
from tests.unit.test_alerts_cli import RULES

BASE = "/api/v1/alerting"


@dataclass
class Api:
    client: TestClient
    editor: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    tokens = open_tokens(settings)
    editor, _ = tokens.create("editor", None, "alice")
    viewer, _ = tokens.create("viewer", None, "support")
    with TestClient(assemble(settings), base_url="http://gateway") as client:
        yield Api(client, _auth(editor), _auth(viewer))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_put_then_get_rules_round_trip_with_diff_and_versions(api: Api, settings: Settings) -> None:
    c = api.client
    empty = c.get(f"{BASE}/rules", headers=api.viewer)
    assert empty.status_code == 200 and empty.json()["version"] == 0

    dry = c.put(f"{BASE}/rules?dry_run=true", content=RULES, headers=api.editor)
    assert dry.status_code == 200, dry.text
    assert dry.json()["applied"] is False and dry.json()["version"] == 0
    assert {"op": "+", "what": "rule", "name": "checkout-errors", "fields": []} in dry.json()[
        "changes"
    ]

    put = c.put(
        f"{BASE}/rules", content=RULES, headers={**api.editor, "Content-Type": "application/yaml"}
    )
    assert put.status_code == 200, put.text
    assert put.json() | {"changes": None} == {
        "applied": True,
        "dry_run": False,
        "version": 1,
        "previous_version": 0,
        "changes": None,
    }
    got = c.get(f"{BASE}/rules", headers=api.viewer)
    body = got.json()
    assert got.headers["etag"] == '"1"'
    assert body["yaml"] == RULES and body["version"] == 1 and body["applied_by"] == "alice"
    assert [r["name"] for r in body["rules"]] == ["checkout-errors", "checkout-silent"]
    assert body["rules"][0] | {"description": ""} == {
        "name": "checkout-errors",
        "kind": "threshold",
        "app": "checkout",
        "env": "prod",
        "source": "error",
        "severity": "critical",
        "for": 120.0,
        "enabled": True,
        "description": "",
    }
    assert body["subscriptions"][0]["matchers"] == ['severity>="warning"']

    changed = RULES.replace("threshold: 50", "threshold: 70")
    stale = c.put(f"{BASE}/rules", content=changed, headers={**api.editor, "If-Match": '"0"'})
    assert stale.status_code == 412 and stale.json()["error"] == "version_conflict"
    second = c.put(
        f"{BASE}/rules?author=bob", content=changed, headers={**api.editor, "If-Match": '"1"'}
    )
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2 and second.json()["changes"] == [
        {"op": "~", "what": "rule", "name": "checkout-errors", "fields": ["threshold"]}
    ]
    config = open_store(settings).read()  # what the stream worker and the CLI see
    assert config.version == 2 and config.applied_by == "bob" and config.text == changed


def test_invalid_rules_are_422_with_every_problem_by_line_and_field(
    api: Api, settings: Settings
) -> None:
    bad = (
        EXAMPLE.read_text()
        .replace("after: 3m", "after: 3 minutes")
        .replace("channel: email", "channel: pager")
    )
    answer = api.client.put(f"{BASE}/rules", content=bad, headers=api.editor)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_rules" and body["message"].startswith("2 problems")
    lines = bad.splitlines()
    by_path = {e["path"]: e for e in body["errors"]}
    silent = by_path["rules[4] (checkout-silent).after"]
    assert "3 minutes" in lines[silent["line"] - 1] and "bad duration" in silent["message"]
    mail = by_path["subscriptions[1] (team-mail).channel"]
    assert "pager" in lines[mail["line"] - 1]
    syntax = api.client.put(f"{BASE}/rules", content="rules: [\n", headers=api.editor)
    assert syntax.status_code == 422 and syntax.json()["errors"][0]["path"] == "(syntax)"
    assert open_store(settings).read().version == 0


def test_silences_add_list_delete(api: Api, settings: Settings) -> None:
    c = api.client
    assert c.put(f"{BASE}/rules", content=RULES, headers=api.editor).status_code == 200
    made = c.post(
        f"{BASE}/silences",
        json={
            "matchers": ["app=checkout", "severity>=warning"],
            "duration": "2h",
            "comment": "load test",
        },
        headers=api.editor,
    )
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["created_by"] == "alice" and silence["state"] == "active"
    ends = datetime.fromisoformat(silence["ends_at"]) - datetime.fromisoformat(silence["starts_at"])
    assert ends == timedelta(hours=2)
    later = datetime.now(UTC) + timedelta(days=1)
    upcoming = c.post(
        f"{BASE}/silences",
        json={
            "matchers": ["alertname=checkout-silent"],
            "starts_at": later.isoformat(),
            "ends_at": (later + timedelta(hours=1)).isoformat(),
            "created_by": "dave",
        },
        headers=api.editor,
    )
    assert upcoming.status_code == 201 and upcoming.json()["state"] == "upcoming"

    listed = c.get(f"{BASE}/silences", headers=api.viewer).json()["silences"]
    assert [(s["id"], s["state"], s["origin"]) for s in listed] == [
        (silence["id"], "active", "api"),
        (upcoming.json()["id"], "upcoming", "api"),
        ("maint", "upcoming", "file"),
    ]
    assert listed[0]["matchers"] == ['app="checkout"', 'severity>="warning"']

    bad = c.post(
        f"{BASE}/silences", json={"matchers": ["app"], "duration": "1h"}, headers=api.editor
    )
    assert bad.status_code == 422 and "bad matcher" in bad.json()["message"]
    none = c.post(f"{BASE}/silences", json={"matchers": []}, headers=api.editor)
    assert none.status_code == 422 and none.json()["error"] == "invalid_request"

    assert c.delete(f"{BASE}/silences/maint", headers=api.editor).status_code == 409
    gone = c.delete(f"{BASE}/silences/{silence['id']}", headers=api.editor)
    assert gone.status_code == 200 and gone.json()["state"] == "deleted"
    assert c.delete(f"{BASE}/silences/{silence['id']}", headers=api.editor).status_code == 404
    assert silence["id"] not in open_store(settings).read().silences


def test_alerts_now_and_history(api: Api, settings: Settings) -> None:
    plant_alerts(settings)
    now = api.client.get(f"{BASE}/alerts", headers=api.viewer)
    assert now.status_code == 200, now.text
    body = now.json()
    assert (body["firing"], body["pending"]) == (1, 1)
    assert [(a["rule"], a["state"]) for a in body["alerts"]] == [
        ("checkout-errors", "firing"),
        ("catalog-slow", "pending"),
    ]
    assert body["alerts"][0]["labels"]["app"] == "checkout" and body["alerts"][0]["value"] == 72.0
    prod = api.client.get(f"{BASE}/alerts?env=preprod", headers=api.viewer).json()
    assert [a["rule"] for a in prod["alerts"]] == ["catalog-slow"]

    history = api.client.get(f"{BASE}/alerts/history?limit=3", headers=api.viewer)
    assert history.status_code == 200, history.text
    states = [(t["rule"], t["previous"], t["state"]) for t in history.json()["transitions"]]
    assert states == [
        ("catalog-slow", "inactive", "pending"),
        ("checkout-errors", "pending", "firing"),
        ("checkout-errors", "inactive", "pending"),
    ]
    assert api.client.get(f"{BASE}/alerts/history?limit=0", headers=api.viewer).status_code == 422


def test_viewers_read_editors_write_ingest_keys_do_neither(api: Api, settings: Settings) -> None:
    from shiftright_server.infra.access.ingest_keys import KeyStore, keys_path

    c = api.client
    ingest, _ = KeyStore(keys_path(settings)).create("checkout", "prod")
    assert c.get(f"{BASE}/silences").status_code == 401
    assert c.get(f"{BASE}/silences").headers["www-authenticate"] == "Bearer"
    refused = c.get(f"{BASE}/rules", headers=_auth(ingest))
    assert refused.status_code == 401 and refused.json()["error"] == "key_unknown"
    for method, path, kwargs in (
        ("put", "/rules", {"content": RULES}),
        ("post", "/silences", {"json": {"matchers": ["app=x"], "duration": "1h"}}),
        ("delete", "/silences/whatever", {}),
    ):
        answer = c.request(method, f"{BASE}{path}", headers=api.viewer, **kwargs)
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden", answer.text
    assert open_store(settings).read().version == 0

    # the ingest API's own contract is unchanged: the alerting API has its own document
    gateway_spec = c.get("/openapi.json").json()
    assert not any(p.startswith(BASE) for p in gateway_spec["paths"])
    spec = c.get(f"{BASE}/openapi.json").json()
    assert {"/rules", "/silences", "/silences/{silence_id}", "/alerts", "/alerts/history"} <= set(
        spec["paths"]
    )


def test_the_gateway_serves_the_flags_api_with_the_same_tokens(api: Api) -> None:
    flags = "/api/v1/flags"
    listed = api.client.get(f"{flags}/flags", headers=api.viewer)
    assert listed.status_code == 200 and listed.json() == {"flags": []}  # none applied
    flip = f"{flags}/flags/checkout/new-checkout/environments/prod/flip"
    refused = api.client.post(flip, json={"to": "off"}, headers=api.viewer)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    unknown = api.client.post(flip, json={"to": "off"}, headers=api.editor)
    assert unknown.status_code == 404  # no such flag applied
