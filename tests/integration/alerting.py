"""What the alerting integration tests share: a worker with 5 s signal buckets, rules
applied to the namespace's configuration topic, and the stored history of a rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shiftright_server.infra.alerting_config import ConfigStore
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics

Sql = Callable[[str], list[tuple[Any, ...]]]

ERROR_BURST = """
  - name: checkout-errors
    kind: threshold
    severity: critical
    scope: {app: checkout, env: prod, source: error, per_key: false}
    measure: count
    aggregate: sum
    window: 20s
    op: ">"
    threshold: 20
    resolve_threshold: 5
"""


def fast_signals(settings: Settings) -> Settings:
    """5 s signal buckets: windows slide past a burst sooner, so tests resolve sooner."""
    streams = settings.streams.model_copy(update={"signal_seconds": 5})
    return settings.model_copy(update={"streams": streams})


def config_store(settings: Settings) -> ConfigStore:
    return ConfigStore(
        settings.kafka.bootstrap_servers,
        topics.named(topics.ALERTING_CONFIG, settings.namespace),
    )


def history(sql: Sql, rule: str) -> list[tuple[str, str, int]]:
    """(state, severity, seq) of each stored transition of ``rule``."""
    return sql(
        f"SELECT state, labels['severity'], seq FROM alerts FINAL WHERE rule = '{rule}' "
        "ORDER BY seq"
    )
