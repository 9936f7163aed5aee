"""The Big Red Button end to end, on the real pipeline: an app (Flask, served over real
HTTP, the SDK's middleware and flags) whose flag-on path fails; the error spike fires a
rule whose action flips the flag off; the app's SDK sees it and serves the old path; the
errors stop, the alert resolves, and after the quiet period the flag is restored.

Kafka → stream worker (alert rules) → notifier process (the flipper thread) → the flag
topic → the app's SDK; the sink lands the errors, with the variant, and the flips."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import shiftright
from flask import Flask
from shiftright.wsgi import instrument_flask
from shiftright_server.infra.flags_config import FlagTopic
from shiftright_server.infra.settings import Settings

from tests.integration.alerting import config_store, fast_signals
from tests.integration.conftest import sql_on, wait_for
from tests.integration.pipeline import Pipeline
from tests.integration.test_sdk_apps import serve_wsgi

APP = "shop-flags"
FLAGS = f"""\
version: 1
app: {APP}
flags:
  - name: new-checkout
    kind: toggle
    environments: {{prod: on}}
  - name: bulk-export
    kind: ticket
    segment: {{event: checkout.submit, at_least: 20, window: 10m, leave_below: 15}}
"""
RULES = f"""\
rules:
  - name: new-checkout-errors
    kind: threshold
    severity: critical
    scope: {{app: {APP}, env: prod, source: error, per_key: false}}
    measure: count
    aggregate: sum
    window: 5s
    op: ">"
    threshold: 10
    resolve_threshold: 1
    flip: {{flag: new-checkout, to: off, restore: auto, quiet: 2s}}
"""


def checkout_app() -> Flask:
    app = Flask("shop-flags")

    @app.post("/checkout")
    def checkout() -> dict[str, str]:
        if shiftright.flag("new-checkout", False):
            raise RuntimeError("new checkout failed")
        return {"path": "old"}

    return instrument_flask(app)


@pytest.fixture(scope="module")
def running(module_settings: Settings) -> Iterator[tuple[Settings, str]]:
    s = fast_signals(module_settings)
    FlagTopic(s.kafka.bootstrap_servers, s.namespace).apply(FLAGS, "alice", "flags.yaml")
    config_store(s).apply(RULES, "alice", "rules.yaml")
    pipeline = Pipeline(s)
    pipeline.start("streams", "sink", "notifier")
    shiftright.init(
        app=APP,
        env="prod",
        kafka=s.kafka.bootstrap_servers,
        namespace=s.namespace,
        health_interval=0,
        hooks=False,
        flush_interval=0.05,
    )
    try:
        with serve_wsgi(checkout_app()) as base:
            yield s, base
    finally:
        shiftright.close(2)
        pipeline.supervisor.stop("notifier", timeout=10)
        pipeline.stop()


def test_an_error_spike_flips_the_flag_off_and_recovery_restores_it(
    running: tuple[Settings, str],
) -> None:
    settings, base = running
    wait_for(lambda: shiftright.flag("new-checkout", False), 20, "the app to see the flag on")
    served: Counter[int] = Counter()
    started = time.monotonic()
    with httpx.Client(base_url=base, limits=httpx.Limits(max_keepalive_connections=0)) as http:

        def press() -> bool:
            served[http.post("/checkout").status_code] += 1
            return not shiftright.flag("new-checkout", False)

        wait_for(press, 40, lambda: f"the alert to flip the flag off ({served})", 0.02)
        flipped_after = time.monotonic() - started
        assert http.post("/checkout").json() == {"path": "old"}  # the old path, no error
    assert served[500] > 10, served
    wait_for(
        lambda: shiftright.flag("new-checkout", False), 40, "the flag restored after the quiet"
    )
    sql = sql_on(settings)

    def flips() -> list[tuple[str, str, str]]:
        return sql(
            "SELECT previous_value, value, actor FROM events_change "
            f"WHERE app = '{APP}' AND name = 'new-checkout' ORDER BY ts"
        )

    wait_for(lambda: len(flips()) >= 3, 20, lambda: f"3 flips stored: {flips()}")
    assert flips() == [
        ("off", "on", "alice"),
        ("on", "off", "alert:new-checkout-errors"),
        ("off", "on", "alert:new-checkout-errors"),
    ]
    by_variant = sql(
        "SELECT flags['new-checkout'] AS variant, count() FROM events_error "
        f"WHERE app = '{APP}' GROUP BY variant"
    )
    assert [v for v, _ in by_variant] == ["on"], by_variant  # every error on the new path
    print(f"flag flipped off {flipped_after:.1f}s after the first failing request")


def test_a_customer_crossing_the_ticket_threshold_gets_the_flag_within_seconds(
    running: tuple[Settings, str],
) -> None:
    def bulk(customer: str) -> bool:
        return bool(shiftright.flag("bulk-export", False, customer_id=customer))

    wait_for(
        lambda: shiftright.flag("bulk-export", None, customer_id="tiny") is False,
        20,
        "the ticket flag loaded",
    )
    for _ in range(19):
        shiftright.track("checkout.submit", customer_id="acme")
    for _ in range(5):
        shiftright.track("checkout.submit", customer_id="tiny")
    shiftright.flush(5)
    assert not bulk("acme")
    shiftright.track("checkout.submit", customer_id="acme")
    crossed = time.monotonic()
    shiftright.flush(5)
    wait_for(lambda: bulk("acme"), 20, "acme in the segment", 0.05)
    took = time.monotonic() - crossed
    assert not bulk("tiny")
    print(f"acme's evaluation turned on {took:.1f}s after its 20th checkout.submit")
