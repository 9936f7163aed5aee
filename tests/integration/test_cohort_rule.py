"""A cohort rule on the real warehouse and broker: events that carry the flag's variant
in the ``flags`` column, the watcher's count query, and the firing on ``alerts.v1`` with
the flip it asks for."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from shiftright_server.infra.alerting_config import AlertingConfig
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.rule_file import load_rules
from shiftright_server.streams.alerting.cohort_watch import CohortWatcher

from tests.integration.test_flags import cli
from tests.unit.test_alerting_cohort_rule import RULES

#: 600 usage events in the last minute, half on each variant, and errors: 30 on the
#: on-cohort (100 per 1,000), 3 on the off-cohort (10 per 1,000).
EVENTS = """
INSERT INTO {table} (event_id, ts, app, env, flags)
SELECT generateUUIDv4(), now64(3) - toIntervalMillisecond({ago_s} * 1000 + number * 90),
       'checkout', 'prod',
       map('new-checkout', if(number % 2 = 0, 'on', 'off'))
FROM numbers({n}) WHERE {where}
"""


def test_a_worse_on_cohort_fires_with_the_flip_on_alerts(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    apply_schema(kafka_settings)
    ch = kafka_settings.clickhouse
    client = get_client(ch, database=ch.database)
    for ago_s in (0, 1800):  # now, and an incident half an hour ago for the backtest
        client.command(EVENTS.format(table="events_usage", n=600, where="1", ago_s=ago_s))
        bad = "number % 2 = 0 OR number < 6"
        client.command(EVENTS.format(table="events_error", n=66, where=bad, ago_s=ago_s))
    watcher = CohortWatcher(kafka_settings)
    watcher.configure(AlertingConfig(rules=load_rules(RULES)))
    (fired,) = watcher.round(datetime.now(UTC))
    assert fired.state == "firing" and fired.value == 110.0  # 33 of 300
    assert fired.threshold == 20.0  # the off-cohort's 3 of 300 is 10 per 1,000: ×2
    sent = _alerts(kafka_settings)
    assert [(a["rule"], a["state"]) for a in sent] == [("new-checkout-worse", "firing")]
    assert sent[0]["annotations"]["flag_flip"].startswith("turns flag new-checkout off in prod")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    replay = cli(
        kafka_settings, "backtest", "new-checkout-worse", "-f", str(rules), "--since", "1h"
    )
    assert replay.exit_code == 0, replay.output
    assert "would have fired 1 time on 1 series" in replay.output


def _alerts(settings: Settings) -> list[dict[str, Any]]:
    topic = topics.named(topics.ALERTS, settings.namespace)
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "t"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.kafka.partitions)])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    try:
        while not found and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                found.append(json.loads(msg.value() or b"{}"))
    finally:
        consumer.close()
    return found
