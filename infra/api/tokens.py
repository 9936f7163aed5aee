"""API tokens of the alerting HTTP API: the gateway's key mechanism (``sr_<id>_<secret>``,
only a SHA-256 stored, revocable) in a file of its own, each token bound to a role
instead of an app."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings
    from shiftright_server.producers.gateway.keys import KeyStore

#: What a token may do: viewers read, editors also change rules and silences.
ROLES = ("viewer", "editor")


def tokens_path(settings: Settings) -> Path:
    """API tokens of the alerting API (see :mod:`.alerting`)."""
    return settings.resolved_state_dir() / "alerting" / "api-tokens.sqlite"


def open_tokens(settings: Settings) -> KeyStore:
    from shiftright_server.producers.gateway.keys import KeyStore

    return KeyStore(tokens_path(settings))
