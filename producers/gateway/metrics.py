"""The gateway's own metrics, in Prometheus text format at ``/metrics``."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)


class GatewayMetrics:
    def __init__(self) -> None:
        # *_created series only double the output
        disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "shiftright_gateway_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.rejects = Counter(
            "shiftright_gateway_rejects", "Refused requests by reason", ["reason"], registry=r
        )
        self.latency = Histogram(
            "shiftright_gateway_request_duration_seconds",
            "Request latency, body read to answer (including Kafka's acknowledgement)",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.events_accepted = Counter(
            "shiftright_gateway_events_accepted",
            "Events acknowledged by Kafka, by kind",
            ["kind"],
            registry=r,
        )
        self.events_refused = Counter(
            "shiftright_gateway_events_refused", "Events refused, by reason", ["reason"], registry=r
        )
        self.records_skipped = Counter(
            "shiftright_gateway_otlp_records_skipped",
            "OTLP records that map to no event (answered as partial success)",
            ["signal"],
            registry=r,
        )
        self.pending = Gauge(
            "shiftright_gateway_pending_events",
            "Events waiting for Kafka's acknowledgement",
            registry=r,
        )
        self.kafka_up = Gauge(
            "shiftright_gateway_kafka_up", "1 when Kafka is reachable", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
