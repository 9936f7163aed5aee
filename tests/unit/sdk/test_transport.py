"""The producer settings DESIGN decision 6 asks of every confluent-kafka producer."""

from __future__ import annotations

import shiftright
from shiftright.transport import producer_config

from producers.emitter import producer_config as emitter_config


def test_producer_settings_match_the_pipeline_expectations() -> None:
    config = shiftright.Config(app="a", env="e", kafka="b1:9092,b2:9092", message_timeout_ms=9000,
                               producer_config={"linger.ms": 5})  # fmt: skip
    settings = producer_config(config)
    assert settings["bootstrap.servers"] == "b1:9092,b2:9092"
    assert settings["partitioner"] == "murmur2_random"  # where Faust expects keys
    assert settings["enable.idempotence"] is True and settings["compression.type"] == "lz4"
    assert settings["message.timeout.ms"] == 9000 < 300_000  # librdkafka's default is 5 min
    assert settings["linger.ms"] == 5  # overrides win
    assert settings["message.max.bytes"] == emitter_config("x")["message.max.bytes"]
