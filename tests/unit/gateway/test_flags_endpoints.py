"""OFREP and flagd JSON from the gateway: the same answers as the SDK, and a flagd JSON that
a stock flagd evaluator (openfeature-flagd-core) resolves the way the SDK does."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from shiftright.flags.evaluate import Snapshot, compile_snapshot
from shiftright_server.infra.access.ingest_keys import KeyStore
from shiftright_server.infra.settings import GatewaySettings
from shiftright_server.producers.gateway.app import Gateway, create_app
from shiftright_server.producers.gateway.flags import FlagAnswers
from shiftright_server.producers.gateway.publisher import KafkaPublisher, PublisherLimits
from shiftright_server.schemas.validation import Limits

from tests.fakes import FakeProducer
from tests.unit.sdk.test_flags import DEFS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SNAPSHOT = Snapshot(
    app="checkout",
    version=2,
    flags=DEFS,
    overrides={"new-checkout|preprod": {"to": "on"}},
    members={"bulk-export|prod": frozenset({"acme"})},
)


class Source:
    def snapshot(self, app: str) -> Snapshot:
        return SNAPSHOT if app == "checkout" else Snapshot(app=app)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    keys = KeyStore(tmp_path / "keys.db")
    producer = FakeProducer()
    publisher = KafkaPublisher(lambda _: producer, "", PublisherLimits())
    gateway = Gateway(
        GatewaySettings(require_key=False), keys, publisher, Limits(), flags=FlagAnswers(Source())
    )
    return TestClient(create_app(gateway))


def test_ofrep_answers_value_variant_and_reason(client: TestClient) -> None:
    url = "/ofrep/v1/evaluate/flags/layout?app=checkout&env=prod"
    wide = client.post(url, json={"context": {"targetingKey": "u-1"}})
    assert wide.json() == {
        "key": "layout",
        "value": "v2",
        "variant": "wide",
        "reason": "TARGETING_MATCH",
    }
    off = client.post("/ofrep/v1/evaluate/flags/new-checkout?app=checkout&env=staging", json={})
    assert off.json() == {"key": "new-checkout", "variant": "off", "reason": "DISABLED"}
    member = client.post(
        "/ofrep/v1/evaluate/flags/bulk-export?app=checkout&env=prod",
        json={"context": {"customer_id": "acme"}},
    )
    assert member.json()["value"] is True
    missing = client.post("/ofrep/v1/evaluate/flags/nope?app=checkout&env=prod", json={})
    assert missing.status_code == 404 and missing.json()["errorCode"] == "FLAG_NOT_FOUND"
    nowhere = client.post("/ofrep/v1/evaluate/flags/layout", json={})
    assert nowhere.status_code == 400


def test_flagd_json_resolves_like_the_sdk_in_a_stock_flagd_evaluator(client: TestClient) -> None:
    for env in ("prod", "preprod", "staging"):
        flagd = FlagdCore()
        flagd.set_flags(client.get(f"/ofrep/v1/flagd.json?app=checkout&env={env}").json())
        ours = compile_snapshot(SNAPSHOT, env)
        for i in range(300):
            user, customer = f"user-{i}", ("acme" if i % 7 == 0 else f"c{i}")
            plan = "pro" if i % 11 == 0 else "free"
            ctx = EvaluationContext(user, {"customer_id": customer, "plan": plan})
            for name, default in (("new-checkout", False), ("layout", "x"), ("bulk-export", False)):
                value, variant, reason = ours[name].evaluate(user, customer, {"plan": plan})
                theirs = (
                    flagd.resolve_boolean_value(name, default, ctx)
                    if isinstance(default, bool)
                    else flagd.resolve_string_value(name, default, ctx)
                )
                expected = default if reason == "DISABLED" else value
                assert theirs.value == expected, (env, name, user, reason)
