"""Corrupted OTLP (JSON values of the wrong type, flipped protobuf bytes) is refused or
partially accepted — never a server error."""

from __future__ import annotations

import copy
import random
from typing import Any

from fastapi.testclient import TestClient
from google.protobuf import json_format

from tests.unit.gateway import otlp_payloads as p

ODD_VALUES: list[Any] = [
    None,
    "",
    "zz",
    "0" * 33,
    -1,
    2**70,
    1e308,
    -0.0,
    True,
    [],
    {},
    [{}],
    {"stringValue": 1},
    {"arrayValue": {"values": [{"kvlistValue": {}}]}},
    "9" * 30,
    "\x00",
    "é" * 300,
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _mutated(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    path = rng.choice(_paths(out)[1:])
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = rng.choice(ODD_VALUES)
    return out


def test_mutated_otlp_json_never_fails_the_server(client: TestClient, auth: dict[str, str]) -> None:
    rng = random.Random(11)
    docs = {
        "/v1/logs": p.LOGS_JSON,
        "/v1/metrics": json_format.MessageToDict(p.metrics_request()),
        "/v1/traces": json_format.MessageToDict(p.traces_request()),
    }
    statuses: set[int] = set()
    for _ in range(150):
        route = rng.choice(list(docs))
        response = client.post(route, json=_mutated(docs[route], rng), headers=auth)
        assert response.status_code < 500, (route, response.text)
        statuses.add(response.status_code)
    assert {200, 400} <= statuses


def test_flipped_protobuf_bytes_never_fail_the_server(
    client: TestClient, auth: dict[str, str]
) -> None:
    rng = random.Random(12)
    bodies = {
        "/v1/logs": p.logs_request(p.exception_record(), p.request_record()).SerializeToString(),
        "/v1/metrics": p.metrics_request().SerializeToString(),
        "/v1/traces": p.traces_request().SerializeToString(),
    }
    headers = {**auth, "Content-Type": "application/x-protobuf"}
    for _ in range(150):
        route = rng.choice(list(bodies))
        body = bytearray(bodies[route])
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        response = client.post(route, content=bytes(body), headers=headers)
        assert response.status_code < 500, (route, response.content[:300])
