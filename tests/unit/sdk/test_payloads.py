"""What the SDK sends is what the pipeline accepts: every payload validates against the
real pydantic models in ``schemas.events``, with the key and topic the workers expect."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import shiftright
from shiftright.health import HealthCollector
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.events import EVENT_ADAPTER, HEALTH_METRICS, partition_key

from tests.unit.sdk.conftest import SDK

NOTHING: dict[str, str] = {}  # looking a key up in it raises KeyError


def _validate_all(sdk: SDK) -> list[Any]:
    assert shiftright.flush(5) == 0
    models = []
    for message in sdk.transport.messages:
        assert wire.is_batch(message.headers)
        for line in wire.split_events(message.value, message.headers):
            assert line is not None
            model = EVENT_ADAPTER.validate_json(line)
            assert partition_key(model) == message.key
            assert message.topic == topics.EVENT_TOPIC_BY_KIND[model.kind]
            models.append(model)
    return models


class PaymentDeclined(Exception):
    pass


def _pay() -> None:
    try:
        NOTHING["card"]
    except KeyError as exc:
        raise PaymentDeclined("card declined") from exc


def test_every_kind_validates_against_the_schema(sdk: SDK) -> None:
    client = sdk.init()
    shiftright.set_user("u-1", customer_id="acme")
    shiftright.track("checkout.submit", duration_ms=42, value=19.99, plan="pro", items=3)
    try:
        _pay()
    except PaymentDeclined:
        shiftright.capture_exception()
    shiftright.capture_message("stock low", level="warning", sku="A1")
    shiftright.change("flag", "new-checkout", "on", previous_value="off")
    shiftright.gauge("sessions.open", 318)
    client.enqueue("health", {"metrics": HealthCollector(client).snapshot()})

    models = {
        m.kind + (":" + m.exception_type if m.kind == "error" else ""): m
        for m in _validate_all(sdk)
    }
    usage = models["usage"]
    assert (usage.name, usage.duration_ms, usage.value) == ("checkout.submit", 42.0, 19.99)
    assert (usage.user_id, usage.customer_id) == ("u-1", "acme")
    assert usage.attributes == {"plan": "pro", "items": "3"}
    assert (usage.app, usage.env, usage.release) == ("checkout", "test", "1.4.2")

    error = models["error:tests.unit.sdk.test_payloads.PaymentDeclined"]
    assert error.exception_message == "card declined" and error.handled
    assert [f.function for f in error.frames][-1] == "_pay"
    assert error.frames[-1].in_app and error.frames[-1].module == "tests.unit.sdk.test_payloads"
    assert "KeyError: 'card'" in error.stacktrace
    assert "The above exception was the direct cause" in error.stacktrace
    assert "raise PaymentDeclined" in error.stacktrace  # source lines, as in a Python traceback

    message = models["error:Message"]
    assert (message.exception_message, message.level) == ("stock low", "warning")
    assert message.frames[-1].function.endswith("test_every_kind_validates_against_the_schema")

    health = models["health"].metrics
    assert health["app.sessions.open"] == 318
    assert {"system.memory.utilization", "process.memory.usage", "process.thread.count"} <= set(
        health
    )
    assert models["change"].name == "new-checkout" and models["change"].value == "on"


def test_out_of_range_fields_are_clamped_not_dead_lettered(sdk: SDK) -> None:
    sdk.init()
    shiftright.track("x" * 500, duration_ms=math.nan, **{f"a{i}": i for i in range(100)})
    shiftright.track("neg", duration_ms=-5, user_id="u" * 300)
    shiftright.capture_exception(ValueError("m" * 20_000))
    models = _validate_all(sdk)
    assert len(models) == 3
    assert len(models[0].name) == 200 and len(models[0].attributes) == 64
    assert models[0].duration_ms is None and models[1].duration_ms == 0


def test_health_metric_names_are_the_schema_names(sdk: SDK) -> None:
    client = sdk.init()
    collector = HealthCollector(client)
    collector.snapshot()
    time.sleep(0.2)  # CPU utilization and I/O rates are deltas between two snapshots
    shiftright.gauge("sessions.open", 5)
    metrics = collector.snapshot()
    expected = set(HEALTH_METRICS) - {"app.throughput.requests_per_second"}
    assert expected <= set(metrics), expected - set(metrics)
    assert 0 <= metrics["system.cpu.utilization"] <= 1


def test_events_from_asyncio_code_carry_their_task_context(sdk: SDK) -> None:
    sdk.init()

    async def handle(user: str) -> None:
        shiftright.set_user(user)
        await asyncio.sleep(0)
        shiftright.track("async.work")

    async def main() -> None:
        await asyncio.gather(*(handle(f"u{i}") for i in range(5)))

    asyncio.run(main())
    users = sorted(m.user_id for m in _validate_all(sdk))
    assert users == [f"u{i}" for i in range(5)]


def test_a_chained_exception_carries_its_causes_and_groups_on_the_root_cause(sdk: SDK) -> None:
    from shiftright_server.streams.grouping.chain import chain_of, root_cause

    sdk.init()
    try:
        _pay()
    except PaymentDeclined:
        shiftright.capture_exception()
    (error,) = _validate_all(sdk)
    chain = chain_of(error)
    assert [c.type for c in chain] == ["tests.unit.sdk.test_payloads.PaymentDeclined", "KeyError"]
    root = root_cause(error)
    assert root.type == "KeyError" and root.message == "'card'"
    assert root.frames[-1].function == "_pay" and root.frames[-1].in_app
