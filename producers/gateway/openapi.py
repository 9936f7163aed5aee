"""The OpenAPI description of the gateway, built from the event models themselves.

The request body of ``POST /v1/events`` is not parsed by FastAPI (the gateway validates it
with the pipeline's own validator, to answer with field paths), so its schema is written
here from ``schemas.events``. ``app`` and ``env`` are optional in it: they default to the
ingest key's binding.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, Field
from shiftright_server.schemas.events import EVENT_ADAPTER

REF = "#/components/schemas/{model}"


class Accepted(BaseModel):
    accepted: int = Field(description="Events Kafka acknowledged")
    event_ids: list[str] = Field(description="Their ids, in request order (assigned when absent)")


class FieldProblem(BaseModel):
    path: str = Field(description="Where in the body, e.g. [3].frames[0].lineno")
    index: int | None = Field(description="Index of the event in the list, if any")
    reason: str
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable reason, e.g. invalid_events, backpressure")
    message: str
    errors: list[FieldProblem] = Field(default_factory=list)


class Health(BaseModel):
    status: str
    kafka: str
    pending_events: int


def event_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """(schema of one event, component schemas it refers to)."""
    schema = copy.deepcopy(EVENT_ADAPTER.json_schema(ref_template=REF))
    defs = schema.pop("$defs", {})
    for model in defs.values():
        required = model.get("required", [])
        if "app" in required:
            model["required"] = [r for r in required if r not in ("app", "env")]
            for name in ("app", "env"):
                props = model["properties"][name]
                props["description"] = f"Defaults to the ingest key's {name}"
    return schema, defs


EXAMPLES: dict[str, Any] = {
    "usage": {
        "summary": "One usage event (app and env from the key, ts and event_id assigned)",
        "value": {
            "kind": "usage",
            "name": "checkout.submit",
            "route": "/checkout",
            "method": "POST",
            "status_code": 201,
            "duration_ms": 42.5,
            "user_id": "u-7",
        },
    },
    "batch": {
        "summary": "A batch: an error and a health snapshot",
        "value": [
            {
                "kind": "error",
                "exception_type": "KeyError",
                "exception_message": "'sku'",
                "frames": [
                    {
                        "module": "shop.cart",
                        "function": "add",
                        "filename": "shop/cart.py",
                        "lineno": 42,
                    }
                ],
            },
            {
                "kind": "health",
                "host": "web-1",
                "metrics": {"system.cpu.utilization": 0.42, "system.memory.utilization": 0.61},
            },
        ],
    },
}


def events_body(max_events: int) -> dict[str, Any]:
    one, _ = event_schemas()
    return {
        "required": True,
        "description": "One event, or a list of events (all or nothing: any invalid event "
        "refuses the request, listing each problem with its path).",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        one,
                        {"type": "array", "items": one, "minItems": 1, "maxItems": max_events},
                    ]
                },
                "examples": EXAMPLES,
            }
        },
    }


def otlp_body(message: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": f"An OTLP {message} (protobuf or OTLP/JSON; gzip, deflate or zstd allowed)",
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }


def _error(description: str, retry: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "model": ErrorBody}
    if retry:
        out["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    return out


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed body (not JSON / not protobuf, corrupt compression)"),
    401: _error("No ingest key, or an unknown or revoked one"),
    403: _error("An event of another app or env than the key's"),
    404: _error("No such path"),
    413: _error("Body, decompressed body, event or event count over the limit"),
    415: _error("Unsupported Content-Type or Content-Encoding"),
    422: _error("Invalid events; each problem is listed with its path"),
    429: _error("Back-pressure: too many events wait for Kafka", retry=True),
    503: _error("Kafka unreachable or did not acknowledge in time", retry=True),
}


def otlp_responses(response: str) -> dict[int | str, dict[str, Any]]:
    """OTLP answers in the request's encoding: the Export*ServiceResponse, or a Status."""
    both = {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"type": "object"}},
    }
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "description": f"{response} (partial_success lists what was not stored)",
            "content": both,
        }
    }
    for code, spec in ERRORS.items():
        if code == 422:
            continue
        entry = {"description": spec["description"] + " — a google.rpc.Status", "content": both}
        if "headers" in spec:
            entry["headers"] = spec["headers"]
        out[code] = entry
    return out


def add_components(spec: dict[str, Any]) -> dict[str, Any]:
    _, defs = event_schemas()
    spec.setdefault("components", {}).setdefault("schemas", {}).update(defs)
    return spec
