"""Flags for apps in other languages: OFREP and flagd's flag JSON, served by the gateway.

- ``POST /ofrep/v1/evaluate/flags/{key}`` (the OpenFeature Remote Evaluation Protocol):
  body ``{"context": {"targetingKey": …, "customer_id": …, …}}``; the answer is
  ``{"key", "value", "variant", "reason"}`` (no ``value`` when the flag is off: the
  provider returns the app's default) or ``{"key", "errorCode", "errorDetails"}`` (404
  for an unknown flag). Stock providers (``openfeature-provider-ofrep`` …) read it.
- ``GET /ofrep/v1/flagd.json``: the app's flags in flagd's flag format (state,
  variants, defaultVariant, JsonLogic targeting with ``fractional``), for flagd itself
  or an in-process flagd provider with a file or HTTP sync.

The app and environment are the ingest key's (``Authorization: Bearer sr_…``); a key
without an environment, or a gateway without keys, takes ``env`` (and ``app``) from the
query string or the context. Evaluation is the SDK's own (:mod:`shiftright.flags`), from
a copy of the flag topic a thread keeps current.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from shiftright.flags.evaluate import Compiled, Snapshot, compile_snapshot
from shiftright.flags.feed import Follower
from shiftright.flags.topic import Folder
from shiftright_server.infra.access.ingest_keys import IngestKey
from shiftright_server.producers.gateway import openapi
from shiftright_server.producers.gateway.errors import GatewayError


class OfrepAnswer(BaseModel):
    """A flag evaluated (no ``value`` when it is off: use the app's default)."""

    key: str
    value: Any = None
    variant: str
    reason: str


class OfrepError(BaseModel):
    key: str
    errorCode: str  # noqa: N815 - OFREP's name
    errorDetails: str = ""  # noqa: N815 - OFREP's name


class FlagdFile(BaseModel):
    """flagd's flag file (see flagd.dev/schema/v0/flags.json)."""

    flags: dict[str, Any]


class FlagSource(Protocol):
    def snapshot(self, app: str) -> Snapshot: ...


class TopicFlags:
    """The flag topic, followed by a thread; each app's snapshot compiled per env, cached."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._folder = Folder()
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self.follower = Follower(bootstrap, topic, self._folder, self._changed)

    def _changed(self) -> None:
        with self._lock:
            self._snapshots = {app: self._folder.snapshot(app) for app in self._folder.apps}

    def snapshot(self, app: str) -> Snapshot:
        with self._lock:
            return self._snapshots.get(app) or Snapshot(app=app)


class FlagAnswers:
    """What the two endpoints answer, from any :class:`FlagSource`."""

    def __init__(self, source: FlagSource) -> None:
        self.source = source
        self._cache: dict[tuple[str, str], tuple[Snapshot, dict[str, Compiled]]] = {}

    def compiled(self, app: str, env: str) -> dict[str, Compiled]:
        snapshot = self.source.snapshot(app)
        cached = self._cache.get((app, env))
        if cached is None or cached[0] is not snapshot:
            cached = self._cache[(app, env)] = (snapshot, compile_snapshot(snapshot, env))
        return cached[1]

    def evaluate(self, app: str, env: str, key: str, context: dict[str, Any]) -> tuple[int, Any]:
        found = self.compiled(app, env).get(key)
        if found is None:
            detail = f"no flag {key!r} for app {app!r}"
            return 404, {"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": detail}
        user = str(context.get("user_id") or context.get("targetingKey") or "")
        customer = str(context.get("customer_id") or "")
        attributes = {k: str(v) for k, v in context.items() if isinstance(v, str | int | float)}
        value, variant, reason = found.evaluate(user, customer, attributes)
        body: dict[str, Any] = {"key": key, "variant": variant, "reason": reason}
        if reason != "DISABLED":
            body["value"] = value
        return 200, body

    def flagd(self, app: str, env: str) -> dict[str, Any]:
        snapshot = self.source.snapshot(app)
        compiled = self.compiled(app, env)
        specs = {str(s.get("name")): s for s in snapshot.flags}
        return {
            "$schema": "https://flagd.dev/schema/v0/flags.json",
            "flags": {name: flagd_flag(specs[name], c) for name, c in compiled.items()},
        }


def flagd_flag(spec: dict[str, Any], compiled: Compiled) -> dict[str, Any]:
    """One flag in flagd's format, as it evaluates in this environment now."""
    if compiled.static is not None:
        value, variant, reason = compiled.static
        if reason == "DISABLED":
            return {"state": "DISABLED", "variants": {"off": False}, "defaultVariant": "off"}
        return {"state": "ENABLED", "variants": {variant: value}, "defaultVariant": variant}
    if compiled.kind == "ticket":
        members = sorted(compiled.members)
        targeting = {"if": [{"in": [{"var": "customer_id"}, members]}, "on", "off"]}
        variants: dict[str, Any] = {"on": True, "off": False}
        return _enabled(variants, "off", targeting)
    chain: list[Any] = []
    for rule in spec.get("targeting") or ():
        if rule.get("percentage"):
            split = [[v, w] for v, w in rule["percentage"].items()]
            chain.append({"fractional": split})
            break
        chain += [_condition(rule), rule["variant"]]
    if len(chain) % 2 == 0:
        chain.append(spec["default"])
    targeting = chain[0] if len(chain) == 1 else {"if": chain}
    return _enabled(dict(spec["variants"]), spec["default"], targeting)


def _enabled(variants: dict[str, Any], default: str, targeting: Any) -> dict[str, Any]:
    return {
        "state": "ENABLED",
        "variants": variants,
        "defaultVariant": default,
        "targeting": targeting,
    }


def _condition(rule: dict[str, Any]) -> dict[str, Any]:
    if rule.get("users"):
        return {"in": [{"var": "targetingKey"}, list(rule["users"])]}
    if rule.get("customers"):
        return {"in": [{"var": "customer_id"}, list(rule["customers"])]}
    parts = []
    for name, allowed in rule["attributes"].items():
        values = [allowed] if isinstance(allowed, str) else list(allowed)
        parts.append({"in": [{"var": name}, values]})
    return parts[0] if len(parts) == 1 else {"and": parts}


def flag_routes(app: FastAPI, answers: FlagAnswers, who: Any) -> None:
    """``who(request) -> IngestKey | None`` is the gateway's authentication."""

    @app.post(
        "/ofrep/v1/evaluate/flags/{key}",
        summary="Evaluate a flag (OFREP)",
        responses={
            200: {"model": OfrepAnswer},
            400: {"model": OfrepError, "description": "No app or env known, or a bad context"},
            401: openapi.ERRORS[401],
            404: {"model": OfrepError, "description": "No such flag"},
        },
    )
    async def ofrep(key: str, request: Request) -> JSONResponse:
        found = who(request)
        body = await _json(request)
        context = body.get("context") or {}
        if not isinstance(context, dict):
            return _invalid(key, "context must be an object")
        where = _where(found, request, context)
        if where is None:
            return _invalid(key, "name the app and env (a key with an env, or ?env=)")
        status, answer = answers.evaluate(*where, key, context)
        return JSONResponse(answer, status)

    @app.get(
        "/ofrep/v1/flagd.json",
        summary="The app's flags in flagd's flag format",
        responses={200: {"model": FlagdFile}, 400: openapi.ERRORS[400], 401: openapi.ERRORS[401]},
    )
    async def flagd(request: Request) -> JSONResponse:
        where = _where(who(request), request, {})
        if where is None:
            raise GatewayError(400, "flags_where", "name the app and env (?app=, ?env=)")
        return JSONResponse(answers.flagd(*where))


def _invalid(key: str, details: str) -> JSONResponse:
    return JSONResponse({"key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": details}, 400)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _where(
    key: IngestKey | None, request: Request, context: dict[str, Any]
) -> tuple[str, str] | None:
    query = request.query_params
    app = key.app if key is not None else str(query.get("app") or context.get("app") or "")
    env = (key.env if key is not None else None) or query.get("env") or context.get("env")
    return (app, str(env)) if app and env else None
