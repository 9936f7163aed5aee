"""Where partitions end, asked of the broker: a client that failed is not asked again."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from shiftright_server.streams import gaps


class _Client:
    made: list[_Client] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.closed = False
        self.fails = not _Client.made  # the first client has lost the partition's metadata
        _Client.made.append(self)

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        if self.fails:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        return 0, 42

    def close(self) -> None:
        self.closed = True


def test_after_a_failed_ask_the_next_ask_uses_a_new_client(monkeypatch: pytest.MonkeyPatch) -> None:
    _Client.made = []
    monkeypatch.setattr(gaps, "Consumer", _Client)
    ends = gaps.LogEnds("127.0.0.1:9")
    with pytest.raises(KafkaException):
        ends.fetch([("events.usage.v1", 3)])
    assert ends.fetch([("events.usage.v1", 3)]) == {("events.usage.v1", 3): 42}
    assert len(_Client.made) == 2 and _Client.made[0].closed
    assert ends.fetch([("events.usage.v1", 3)]) == {("events.usage.v1", 3): 42}
    assert len(_Client.made) == 2  # a client that answers is kept
