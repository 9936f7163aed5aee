"""POST /v1/events: what a client sending JSON batches sees."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from shiftright_server.infra.settings import GatewaySettings

from tests.unit.gateway.fakes import NOW, Harness, build

TS = "2026-11-26T11:59:30.123Z"


def usage(**fields: Any) -> dict[str, Any]:
    return {"kind": "usage", "name": "cart.add", "ts": TS, **fields}


def test_accepted_events_reach_kafka_in_wire_format(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    body = [
        usage(route="/cart/{id}", method="POST", status_code=201, duration_ms=12.5, user_id="u1"),
        {"kind": "error", "ts": TS, "exception_type": "KeyError", "exception_message": "'sku'"},
        {"kind": "health", "ts": TS, "host": "web-1", "metrics": {"system.cpu.utilization": 0.4}},
        {"kind": "change", "ts": TS, "change_type": "deploy", "name": "1.4.3"},
    ]
    response = client.post("/v1/events", json=body, headers=auth)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 4 and len(set(answer["event_ids"])) == 4
    by_topic = {m.topic: m for m in harness.producer.produced}
    assert set(by_topic) == {f"ns.events.{k}.v1" for k in ("usage", "error", "health", "change")}
    first = json.loads(by_topic["ns.events.usage.v1"].value)
    assert first["app"] == "checkout" and first["env"] == "prod"  # from the key's binding
    assert (
        first["route"] == "/cart/{id}"
        and first["status_code"] == 201
        and first["duration_ms"] == 12.5
    )
    assert datetime.fromisoformat(first["ts"]) == datetime(2026, 11, 26, 11, 59, 30, 123000, UTC)
    assert first["event_id"] == answer["event_ids"][0]
    assert by_topic["ns.events.usage.v1"].key == b"checkout|prod|cart.add"
    assert by_topic["ns.events.usage.v1"].headers == [("content-type", b"application/x-ndjson")]


def test_one_event_object_and_ndjson_are_accepted(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    assert client.post("/v1/events", json=usage(), headers=auth).json()["accepted"] == 1
    ndjson = b"\n".join(json.dumps(usage(name=f"f{i}")).encode() for i in range(3)) + b"\n"
    response = client.post(
        "/v1/events", content=ndjson, headers={**auth, "Content-Type": "application/x-ndjson"}
    )
    assert response.json()["accepted"] == 3
    assert len(harness.producer.events()) == 4


def test_missing_ts_and_event_id_are_assigned(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    response = client.post("/v1/events", json={"kind": "usage", "name": "x"}, headers=auth)
    stored = json.loads(harness.producer.events()[0])
    assert datetime.fromisoformat(stored["ts"]) == NOW  # the gateway's clock
    assert stored["event_id"] == response.json()["event_ids"][0]


def test_invalid_events_are_listed_with_paths_and_nothing_is_sent(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    body = [
        usage(),
        usage(name="", status_code="x"),
        {"kind": "error", "ts": TS, "frames": [{"lineno": -1}], "exception_type": "E"},
        {"kind": "nope"},
        {"ts": TS},
        usage(extra_field=1),
        usage(ts="2026-11-26T13:00:00Z"),
        42,
    ]
    response = client.post("/v1/events", json=body, headers=auth)
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "invalid_events"
    assert answer["message"] == "7 of 8 events refused; nothing was accepted"
    errors = {(e["path"], e["reason"]) for e in answer["errors"]}
    assert errors == {
        ("[1].name", "schema_violation"),
        ("[1].status_code", "schema_violation"),
        ("[2].frames[0].lineno", "schema_violation"),
        ("[3].kind", "unknown_kind"),
        ("[4].kind", "missing_kind"),
        ("[5].extra_field", "schema_violation"),
        ("[6].ts", "ts_in_future"),
        ("[7]", "not_an_object"),
    }
    messages = {e["path"]: e["message"] for e in answer["errors"]}
    assert "got 'x'" in messages["[1].status_code"]
    assert "greater than or equal to 0" in messages["[2].frames[0].lineno"]
    assert harness.producer.produced == []


def test_a_single_event_error_path_has_no_index(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/events", json={"kind": "health", "metrics": {}}, headers=auth)
    assert response.status_code == 422
    assert [(e["path"], e["index"]) for e in response.json()["errors"]] == [("metrics", None)]


def test_events_of_another_app_or_env_are_forbidden(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    response = client.post(
        "/v1/events", json=[usage(), usage(app="billing"), usage(env="preprod")], headers=auth
    )
    assert response.status_code == 403
    paths = [(e["path"], e["reason"]) for e in response.json()["errors"]]
    assert paths == [("[1].app", "app_not_allowed"), ("[2].env", "env_not_allowed")]
    assert "'checkout', not 'billing'" in response.json()["errors"][0]["message"]
    assert harness.producer.produced == []


def test_a_key_without_env_accepts_any_env_but_needs_one(
    harness: Harness, client: TestClient
) -> None:
    token, _ = harness.keys.create("checkout")
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post("/v1/events", json=usage(env="preprod"), headers=auth).status_code == 200
    response = client.post("/v1/events", json=usage(), headers=auth)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "env"


def test_malformed_bodies_are_400(client: TestClient, auth: dict[str, str]) -> None:
    bad_json = client.post(
        "/v1/events", content=b'{"kind": ', headers={**auth, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "malformed_json"
    scalar = client.post("/v1/events", json="hello", headers=auth)
    assert scalar.status_code == 400 and scalar.json()["error"] == "not_an_object"
    assert client.post("/v1/events", json=[], headers=auth).status_code == 422
    form = client.post("/v1/events", content=b"a=b", headers={**auth, "Content-Type": "text/plain"})
    assert form.status_code == 415 and "text/plain" in form.json()["message"]


def test_size_limits_answer_413(tmp_path: Any) -> None:
    made = build(tmp_path, settings=GatewaySettings(max_body_bytes=2000, max_events_per_request=5))
    client = TestClient(made.app)
    auth = {"Authorization": f"Bearer {made.keys.create('checkout', 'prod')[0]}"}
    big = client.post(
        "/v1/events", json=[usage(user_id="u" * 150)] * 5 + [usage()] * 20, headers=auth
    )
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    many = client.post("/v1/events", json=[usage()] * 6, headers=auth)
    assert many.status_code == 413 and many.json()["error"] == "too_many_events"
    assert "limit of 5" in many.json()["message"]
    bomb = gzip.compress(json.dumps([usage(attributes={"pad": "x" * 100_000})]).encode())
    assert len(bomb) < 2000
    unzipped = client.post(
        "/v1/events",
        content=bomb,
        headers={**auth, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert unzipped.status_code == 413 and "decompressed" in unzipped.json()["message"]
    assert made.producer.produced == []
    made.publisher.close(0)


def test_an_event_over_the_pipelines_event_limit_is_413(
    client: TestClient, auth: dict[str, str]
) -> None:
    huge = usage(attributes={f"k{i}": "v" * 5000 for i in range(60)})  # ~300 KiB > 256 KiB
    response = client.post("/v1/events", json=[usage(), huge], headers=auth)
    assert response.status_code == 413
    assert response.json()["errors"][0]["path"] == "[1]"
    assert response.json()["errors"][0]["reason"] == "oversized"


def test_gzip_bodies_are_accepted(client: TestClient, auth: dict[str, str]) -> None:
    body = gzip.compress(json.dumps([usage(), usage()]).encode())
    response = client.post(
        "/v1/events",
        content=body,
        headers={**auth, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.json()["accepted"] == 2
    corrupt = client.post(
        "/v1/events", content=b"\x1f\x8bnot gzip", headers={**auth, "Content-Encoding": "gzip"}
    )
    assert corrupt.status_code == 400
    brotli = client.post("/v1/events", content=b"x", headers={**auth, "Content-Encoding": "br"})
    assert brotli.status_code == 415


def test_own_metrics_count_requests_rejects_and_latency(
    client: TestClient, auth: dict[str, str]
) -> None:
    client.post("/v1/events", json=usage(), headers=auth)
    client.post("/v1/events", json=usage(name=""), headers=auth)
    client.post("/v1/events", json=usage())
    text = client.get("/metrics").text
    assert 'shiftright_gateway_requests_total{route="/v1/events",status="200"} 1.0' in text
    assert 'shiftright_gateway_requests_total{route="/v1/events",status="422"} 1.0' in text
    assert 'shiftright_gateway_rejects_total{reason="key_missing"} 1.0' in text
    assert 'shiftright_gateway_rejects_total{reason="invalid_events"} 1.0' in text
    assert 'shiftright_gateway_events_refused_total{reason="schema_violation"} 1.0' in text
    assert 'shiftright_gateway_events_accepted_total{kind="usage"} 1.0' in text
    assert 'shiftright_gateway_request_duration_seconds_count{route="/v1/events"} 3.0' in text
    assert "shiftright_gateway_kafka_up 1.0" in text


def test_openapi_spec_documents_the_event_envelope(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert len(body["oneOf"]) == 2 and body["oneOf"][1]["type"] == "array"
    usage_schema = spec["components"]["schemas"]["UsageEvent"]
    assert "app" not in usage_schema["required"] and "name" in usage_schema["required"]
    responses = spec["paths"]["/v1/events"]["post"]["responses"]
    assert {"200", "401", "403", "413", "422", "429", "503"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]
    assert set(spec["paths"]["/v1/logs"]["post"]["requestBody"]["content"]) == {
        "application/x-protobuf",
        "application/json",
    }


def test_a_client_event_id_is_kept(
    client: TestClient, harness: Harness, auth: dict[str, str]
) -> None:
    given = "01936f0e-5c4a-7b3e-9a1d-2f4e6a8b0c1d"
    response = client.post("/v1/events", json=usage(event_id=given), headers=auth)
    assert response.json()["event_ids"] == [given]
    assert json.loads(harness.producer.events()[0])["event_id"] == given
