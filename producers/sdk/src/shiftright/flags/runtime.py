"""The flag store of the running client, started on first use (an app that never asks
for a flag starts no thread), and how an evaluation is recorded in the event scope."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from shiftright.context import EMPTY, Scope, current, writable
from shiftright.flags.feed import KafkaFeed, read_file
from shiftright.flags.store import FlagStore

if TYPE_CHECKING:
    from shiftright.client import Client

#: Flags recorded per scope (request); later ones are evaluated but not recorded.
MAX_FLAGS_PER_SCOPE = 16


class FlagFeed(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> None: ...


class Runtime:
    def __init__(self, client: Client) -> None:
        config = client.config
        self.client = client
        self.store = FlagStore(config.env)
        if config.flags_file:
            saved = read_file(config.flags_file)
            if saved is not None and saved.app == config.app:
                self.store.replace(saved, "file")
        factory = config.flags_feed or KafkaFeed
        self.feed: FlagFeed = factory(self.store, config)
        self.feed.start()


_runtime: Runtime | None = None
_lock = threading.Lock()


def store_of(client: Client) -> FlagStore:
    """The client's flag store, started on first use."""
    found = _runtime
    if found is not None and found.client is client:
        return found.store
    return _start(client).store


def _start(client: Client) -> Runtime:
    global _runtime
    with _lock:
        if _runtime is not None and _runtime.client is client:
            return _runtime
        stop()
        _runtime = Runtime(client)
        return _runtime


def stop() -> None:
    """Stop the feed thread (on close; the next evaluation starts a new one)."""
    global _runtime
    found, _runtime = _runtime, None
    if found is not None:
        with contextlib.suppress(Exception):
            found.feed.stop()


def record(name: str, variant: str) -> None:
    """Remember the variant in the current scope: each event of the scope carries it."""
    scope: Scope = current.get()
    if scope is EMPTY:
        scope = writable()
    flags = scope.flags
    if len(flags) < MAX_FLAGS_PER_SCOPE or name in flags:
        flags[name] = variant


def _after_fork_in_child() -> None:
    global _runtime
    _runtime = None  # the feed thread did not survive the fork: start again on next use


os.register_at_fork(after_in_child=_after_fork_in_child)
