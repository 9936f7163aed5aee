"""Alerting managed as code: the rule file and silences, as the CLI and the HTTP API
change them.

The rule file, its version history and the silences live in the compacted topic
``alerting.config.v1`` (:mod:`shiftright_server.infra.alerting_config`). This module holds
what both adapters share — validating a rule file, the diff against the applied version,
making, listing and deleting silences — with no web framework and no terminal output.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shiftright_server.schemas.alerts import Matcher, Rule, RuleFile, Silence, parse_duration
from shiftright_server.schemas.rule_file import Change, load_rules

if TYPE_CHECKING:
    from shiftright_server.infra.alerting_config import AlertingConfig
    from shiftright_server.infra.settings import Settings


class AlertingStore(Protocol):
    """What the CLI and the API need of the configuration store (``ConfigStore``)."""

    def read(self) -> AlertingConfig: ...
    def apply(self, text: str, author: str, source: str = "") -> AlertingConfig: ...
    def add_silence(self, silence: Silence) -> None: ...
    def delete_silence(self, silence_id: str) -> None: ...


def open_store(settings: Settings) -> AlertingStore:
    from shiftright_server.infra.alerting_config import ConfigStore
    from shiftright_server.schemas import topics

    topic = topics.named(topics.ALERTING_CONFIG, settings.namespace)
    return ConfigStore(settings.kafka.bootstrap_servers, topic)


def parse_rules(text: str, source: str) -> RuleFile:
    """:func:`load_rules` (every problem, syntax included, by line and field)."""
    return load_rules(text, source)


def change_json(c: Change) -> dict[str, Any]:
    return {"op": c.op, "what": c.what, "name": c.name, "fields": list(c.fields)}


def rule_summary(rule: Rule) -> dict[str, Any]:
    """One rule as ``rules list`` and ``GET /rules`` show it."""
    return {
        "name": rule.name,
        "kind": rule.kind,
        "app": rule.scope.app,
        "env": rule.scope.env,
        "source": rule.scope.source,
        "severity": rule.severity,
        "for": rule.for_,
        "enabled": rule.enabled,
        "description": rule.description,
    }


class SilenceError(ValueError):
    """A silence that cannot be made (bad matcher, duration or times)."""


def make_silence(
    matchers: Iterable[str],
    duration: str | float | None,
    comment: str,
    created_by: str,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    now: datetime | None = None,
) -> Silence:
    """A new silence with a generated id; :class:`SilenceError` says what is wrong."""
    now = now or datetime.now(UTC)
    parsed: list[Matcher] = []
    for text in matchers:
        try:
            parsed.append(Matcher.model_validate(text))
        except ValueError as exc:
            raise SilenceError(_first_error(exc)) from None
    if not parsed:
        raise SilenceError("a silence needs at least one matcher, e.g. --match app=checkout")
    start = starts_at or now
    if ends_at is None:
        if duration is None:
            raise SilenceError("say how long: a duration such as 2h (or an end time)")
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise SilenceError(str(exc)) from None
        if seconds <= 0:
            raise SilenceError("the duration must be more than 0")
        ends_at = start + timedelta(seconds=seconds)
    if ends_at <= now:
        raise SilenceError("the silence would already be over")
    try:
        return Silence(
            id=secrets.token_hex(5),
            matchers=parsed,
            starts_at=start,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
        )
    except ValueError as exc:
        raise SilenceError(_first_error(exc)) from None


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first["msg"]).removeprefix("Value error, ")
    return str(exc)


@dataclass(frozen=True)
class SilenceView:
    silence: Silence
    origin: str  # "file": written in the rule file; "api": made by the CLI or the API
    state: str  # active, upcoming, expired

    def as_json(self) -> dict[str, Any]:
        s = self.silence
        return {
            "id": s.id,
            "matchers": [str(m) for m in s.matchers],
            "starts_at": s.starts_at.isoformat(),
            "ends_at": s.ends_at.isoformat(),
            "created_by": s.created_by,
            "comment": s.comment,
            "origin": self.origin,
            "state": self.state,
        }


def silences_of(config: AlertingConfig, now: datetime, expired: bool = False) -> list[SilenceView]:
    """Active and upcoming silences (all with ``expired``), the soonest to end first."""
    from_file = {s.id for s in config.rules.silences}
    views = []
    for s in config.all_silences():
        state = "active" if s.active(now) else "upcoming" if s.starts_at > now else "expired"
        if state == "expired" and not expired:
            continue
        origin = "file" if s.id in from_file and s.id not in config.silences else "api"
        views.append(SilenceView(s, origin, state))
    return sorted(views, key=lambda v: (v.state != "active", v.silence.ends_at, v.silence.id))


class SilenceNotFound(LookupError):
    pass


class SilenceInFile(ValueError):
    pass


def delete_silence(store: AlertingStore, silence_id: str) -> Silence:
    """Delete a silence made by the CLI or the API; file silences are removed by editing
    the file (an apply would bring them back otherwise)."""
    config = store.read()
    if silence_id in config.silences:
        store.delete_silence(silence_id)
        return config.silences[silence_id]
    if any(s.id == silence_id for s in config.rules.silences):
        raise SilenceInFile(
            f"silence {silence_id} is written in the rule file (version {config.version}); "
            "remove it there and apply the file"
        )
    raise SilenceNotFound(f"no silence {silence_id}")
