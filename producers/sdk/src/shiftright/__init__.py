"""shiftright SDK: usage, error, health and change events from a Python app to Kafka.

    import shiftright
    shiftright.init(app="checkout", env="prod", release="1.4.2", kafka="broker:9092")
    shiftright.track("checkout.submit", user_id=u.id, customer_id=t.id, duration_ms=42)

Nothing here blocks the calling thread or raises into it (see :mod:`shiftright.client`).
"""

from __future__ import annotations

from shiftright.api import (
    capture_exception,
    capture_message,
    change,
    close,
    flag,
    flush,
    gauge,
    get_client,
    init,
    register_gauge,
    request,
    stats,
    track,
)
from shiftright.client import Client
from shiftright.config import Config
from shiftright.context import scope, set_customer, set_session, set_tag, set_user
from shiftright.transport import KafkaTransport, Transport

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Config",
    "KafkaTransport",
    "Transport",
    "capture_exception",
    "capture_message",
    "change",
    "close",
    "flag",
    "flush",
    "gauge",
    "get_client",
    "init",
    "register_gauge",
    "request",
    "scope",
    "set_customer",
    "set_session",
    "set_tag",
    "set_user",
    "stats",
    "track",
]
