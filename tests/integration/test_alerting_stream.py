"""Alert rules in the real stream worker: rules applied to the configuration topic, events
through Kafka, transitions in ClickHouse's alert history — fired within seconds of the
burst, resolved when it is over, and a new rule version picked up without a restart."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from shiftright_server.infra.settings import Settings

from tests.builders import event
from tests.integration.alerting import ERROR_BURST, Sql, config_store, fast_signals, history
from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline, emit

RULES = (
    "rules:"
    + ERROR_BURST
    + """  - name: host-silent
    kind: absence
    after: 12s
    scope: {app: checkout, env: prod, source: health}
  - name: new-issue
    kind: error_group
    transitions: [new]
    scope: {app: checkout, env: prod}
"""
)

MORE = (
    RULES
    + """
  - name: search-busy
    kind: threshold
    scope: {app: catalog, env: preprod, source: usage, filters: {feature: search}}
    measure: count
    aggregate: sum
    window: 20s
    op: ">="
    threshold: 30
"""
)


def test_rules_fire_and_resolve_in_the_stream_and_a_new_version_applies_live(
    settings: Settings, sql: Sql
) -> None:
    s = fast_signals(settings)
    store = config_store(s)
    assert store.apply(RULES, "qa@example.com", "rules.yaml").version == 1
    pipeline = Pipeline(s)
    pipeline.start("streams", "sink")
    try:
        now = datetime.now(UTC)
        emit(
            s,
            [
                event(
                    "health",
                    now,
                    "checkout",
                    "prod",
                    host="web-1",
                    metrics={"system.cpu.utilization": 0.4},
                )
            ],
        )
        burst = [
            event(
                "error",
                now + timedelta(milliseconds=50 * i),
                "checkout",
                "prod",
                exception_type="TimeoutError",
            )
            for i in range(40)
        ]
        sent = time.monotonic()
        emit(s, burst)
        wait_for(
            lambda: ("firing", "critical", 1) in history(sql, "checkout-errors"),
            90,
            lambda: f"firing; history {history(sql, 'checkout-errors')}\n{pipeline.log('streams')}",
        )
        fired_after = time.monotonic() - sent
        print(f"\nerror burst → firing row in ClickHouse: {fired_after:.1f} s")
        # the burst is a new issue (an error group never seen before)
        wait_for(
            lambda: bool(
                sql(
                    "SELECT 1 FROM alerts WHERE rule = 'new-issue' AND state = "
                    "'firing' AND labels['exception_type'] = 'TimeoutError'"
                )
            ),
            60,
            lambda: f"new-issue; got {history(sql, 'new-issue')}",
        )
        # the host reported once and then went quiet: the absence rule notices
        wait_for(
            lambda: ("firing", "warning", 1) in history(sql, "host-silent"),
            60,
            lambda: f"host-silent firing; got {history(sql, 'host-silent')}",
        )
        # the burst is over: once the 20 s window has slid past it, the alert resolves
        wait_for(
            lambda: ("resolved", "critical", 2) in history(sql, "checkout-errors"),
            90,
            lambda: f"resolved; history {history(sql, 'checkout-errors')}",
        )
        labels = sql("SELECT labels FROM alerts FINAL WHERE rule = 'checkout-errors' LIMIT 1")
        assert labels[0][0] | {} == {
            "alertname": "checkout-errors",
            "app": "checkout",
            "env": "prod",
            "severity": "critical",
        }

        # a new rule, applied while the worker runs
        assert store.apply(MORE, "qa@example.com", "rules.yaml").version == 2
        # a change takes effect within 2 seconds
        wait_for(
            lambda: 2 in rule_versions_loaded(pipeline),
            2.0,
            lambda: f"rules version 2 loaded\n{pipeline.log('streams')}",
            interval=0.1,
        )
        now = datetime.now(UTC)
        emit(s, [event("usage", now, "catalog", "preprod", name="search") for _ in range(35)])
        wait_for(
            lambda: ("firing", "warning", 1) in history(sql, "search-busy"),
            60,
            lambda: f"search-busy; got {history(sql, 'search-busy')}\n{pipeline.log('streams')}",
        )
        row = sql("SELECT labels['feature'], value FROM alerts FINAL WHERE rule = 'search-busy'")
        assert row[0][0] == "search" and row[0][1] >= 35
        # each transition is stored once, whatever was re-sent
        assert history(sql, "checkout-errors")[:2] == [
            ("firing", "critical", 1),
            ("resolved", "critical", 2),
        ]
    finally:
        pipeline.stop()


def rule_versions_loaded(pipeline: Pipeline) -> set[int]:
    """The rule versions the worker says it loaded (the JSON of its log lines, which
    Faust's log handler prefixes with the time, pid and level)."""
    found = set()
    for line in pipeline.supervisor.tail("streams", 400).splitlines():
        try:
            record = json.loads(line[line.find("{") :])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "alert_rules_loaded":
            found.add(int(record["version"]))
    return found
