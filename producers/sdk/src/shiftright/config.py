"""The SDK's settings: one frozen object, built by :func:`shiftright.init` and passed down."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shiftright.flags.runtime import FlagFeed
    from shiftright.flags.store import FlagStore
    from shiftright.transport import Transport

KINDS = ("usage", "error", "health", "change")

#: Attribute, extra and header keys whose values never leave the process (substring match,
#: case-insensitive, ``-`` and ``_`` treated alike).
DEFAULT_SCRUB_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "sessionid",
    "session_key",
    "api_key",
    "apikey",
    "private_key",
    "credential",
    "csrf",
    "x_api_key",
    "credit_card",
    "card_number",
    "cvv",
    "ssn",
)


@dataclass(frozen=True)
class Config:
    """Everything the SDK needs to know; defaults suit a web app."""

    app: str
    env: str
    release: str = ""
    kafka: str = "127.0.0.1:9092"
    #: Topic prefix (``<namespace>.events.usage.v1``), to share a cluster; "" for none.
    namespace: str = ""
    host: str = field(default_factory=socket.gethostname)
    #: Service instance id; "" means ``host:pid`` of each process (a forked worker gets its own).
    instance: str = ""
    origin: str = "user"
    #: Lets test marks sent in a request's ``baggage`` through in production (see
    #: :mod:`shiftright.testing`); "" accepts them only outside ``prod``/``production``.
    test_token: str = ""
    #: Events waiting for the sender thread; beyond this they are dropped (``queue_full``).
    queue_size: int = 100_000
    #: How often the sender thread wakes to batch what was queued.
    flush_interval: float = 0.1
    #: Fraction of events kept, per kind (missing kinds: 1.0).
    sample_rates: Mapping[str, float] = field(default_factory=dict)
    #: Events per second, per kind (missing kinds: unlimited); bursts up to one second's worth.
    rate_limits: Mapping[str, float] = field(default_factory=lambda: {"error": 100.0})
    scrub_keys: tuple[str, ...] = DEFAULT_SCRUB_KEYS
    #: Module prefixes that count as the app's own code (in-app frames) or never do.
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    #: Seconds between health snapshots; 0 turns the collector off.
    health_interval: float = 10.0
    #: Install sys.excepthook, threading.excepthook and the asyncio handler.
    hooks: bool = True
    #: Attach a handler to the root logger for records at this level or above with exc_info.
    logging_level: int | None = 40
    #: Also report ERROR+ log records that carry no exception, as messages.
    log_messages: bool = False
    #: Seconds :func:`shiftright.close` (and the exit hook) waits for delivery.
    shutdown_timeout: float = 2.0
    #: librdkafka's message.timeout.ms: how long a message may wait for the broker; 0
    #: (the default) waits for as long as the producer's buffer has room, so a broker
    #: restart or a leader election loses nothing; a full buffer drops, counted.
    message_timeout_ms: int = 0
    #: The disk spill: a directory for events the broker cannot take now ("" turns it off).
    #: Each process uses a slot ``<spill_dir>/<n>``; a restarted app sends what a dead one
    #: left there. See :mod:`shiftright.spiller`.
    spill_dir: str = ""
    #: Bound of one slot's segment files; past it the newest events are dropped (``spill_full``).
    spill_max_bytes: int = 256 * 1024 * 1024
    #: Seconds without any acknowledgement from the broker, while messages wait, before
    #: new events go to the spill instead of the producer's memory.
    spill_after: float = 5.0
    #: Extra confluent-kafka settings, applied last.
    producer_config: Mapping[str, Any] = field(default_factory=dict)
    #: Builds the transport (called again in a forked child). Default: confluent-kafka.
    transport: Callable[[Config], Transport] | None = None
    #: Flags: a JSON file read at start (the last copy, when the server is away) and
    #: rewritten after each change; "" for none.
    flags_file: str = ""
    #: Builds what feeds the flag store (``start()`` / ``stop()``); default: the topic.
    flags_feed: Callable[[FlagStore, Config], FlagFeed] | None = None

    def sample_rate(self, kind: str) -> float:
        return float(self.sample_rates.get(kind, 1.0))


#: Options an operator can set without touching code; an option passed to ``init`` wins.
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "spill_dir": ("SHIFTRIGHT_SPILL_DIR", str),
    "spill_max_bytes": ("SHIFTRIGHT_SPILL_MAX_BYTES", int),
    "spill_after": ("SHIFTRIGHT_SPILL_AFTER", float),
}


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The options :data:`ENVIRONMENT` names that ``environ`` sets (unreadable ones skipped)."""
    found: dict[str, Any] = {}
    for option, (name, parse) in ENVIRONMENT.items():
        raw = environ.get(name, "").strip()
        if raw:
            try:
                found[option] = parse(raw)
            except ValueError:
                continue
    return found
