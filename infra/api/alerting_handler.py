"""The alerting API's request handling, apart from the web routes: who is asking (a
bearer token bound to a role), and each operation on the configuration store and the
warehouse, with their failures as the gateway's error shapes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from shiftright_server.infra.access.audit import Audit
from shiftright_server.infra.api.alerting_bodies import SilenceIn
from shiftright_server.infra.api.gate import Caller, TokenGate
from shiftright_server.producers.gateway.errors import FieldError, GatewayError, Rejected
from shiftright_server.schemas.rule_file import RuleFileError, diff
from shiftright_server.streams.alerting.history import alert_history, current_alerts, jsonable
from shiftright_server.streams.alerting.service import (
    AlertingStore,
    SilenceError,
    SilenceInFile,
    SilenceNotFound,
    SilenceView,
    change_json,
    delete_silence,
    make_silence,
    parse_rules,
    rule_summary,
    silences_of,
)

if TYPE_CHECKING:
    from shiftright_server.infra.alerting_config import AlertingConfig
    from shiftright_server.producers.gateway.app import KeyChecker


@dataclass(frozen=True, slots=True)
class RuleProblem(FieldError):
    """A rule-file problem: the field's path, and the line it is on."""

    line: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "path": self.path,
            "reason": self.reason,
            "message": self.message,
        }


def invalid_file(exc: RuleFileError, reason: str, what: str) -> Rejected:
    """422 naming the line and field of each problem of a rule or flag file."""
    problems: list[FieldError] = [
        RuleProblem(p.field, "invalid", p.message, line=p.line) for p in exc.problems
    ]
    n = len(problems)
    message = f"{n} problem{'s' if n != 1 else ''} in the {what}; nothing applied"
    return Rejected(422, reason, message, problems)


def check_if_match(if_match: str | None, version: int, fetch: str) -> None:
    """412 when ``If-Match`` names another version than the applied one."""
    if if_match is not None and if_match.strip().strip('"') != str(version):
        raise Rejected(
            412,
            "version_conflict",
            f"version {version} is applied now, not {if_match.strip()}: "
            f"{fetch}, merge, and try again",
        )


# -- the API ----------------------------------------------------------------------------
class AlertingApi(TokenGate):
    """The request handling, with its collaborators passed in (tests give fakes)."""

    what = "alerting"

    def __init__(
        self,
        store: AlertingStore,
        tokens: KeyChecker,
        warehouse: Callable[[], Any],
        anonymous_reads: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        audit: Audit | None = None,
    ) -> None:
        super().__init__(tokens, anonymous_reads, audit)
        self.store = store
        self._warehouse = warehouse
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.clock = clock

    # -- collaborators ------------------------------------------------------------------
    def read(self) -> AlertingConfig:
        return _config_call(self.store.read)

    def warehouse(self) -> Any:
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = self._warehouse()
                except Exception as exc:
                    raise _unavailable("warehouse_unavailable", exc) from exc
            return self._client

    def query(self, run: Callable[[Any], Any]) -> Any:
        client = self.warehouse()
        try:
            return run(client)
        except Exception as exc:
            raise _unavailable("warehouse_unavailable", exc) from exc

    # -- operations ---------------------------------------------------------------------
    def rules(self) -> dict[str, Any]:
        c = self.read()
        return {
            "version": c.version,
            "applied_by": c.applied_by,
            "applied_at": c.applied_at,
            "source": c.source,
            "yaml": c.text,
            "rules": [rule_summary(r) for r in c.rules.rules],
            "subscriptions": [
                {
                    "name": s.name,
                    "channel": s.channel,
                    "to": s.to,
                    "matchers": [str(m) for m in s.matchers],
                    "rules": s.rules,
                    "send_resolved": s.send_resolved,
                }
                for s in c.rules.subscriptions
            ],
        }

    def put_rules(
        self, text: str, who: Caller, dry_run: bool, if_match: str | None, author: str, source: str
    ) -> dict[str, Any]:
        try:
            new = parse_rules(text, source)
        except RuleFileError as exc:
            raise invalid_file(exc, "invalid_rules", "rule file") from None
        current = self.read()
        check_if_match(if_match, current.version, "GET /rules")
        changes = [change_json(c) for c in diff(current.rules, new)]
        result = {
            "applied": False,
            "dry_run": dry_run,
            "version": current.version,
            "previous_version": current.version,
            "changes": changes,
        }
        if dry_run or (current.version and text == current.text):
            return result
        applied = _config_call(lambda: self.store.apply(text, author or who.name, source))
        before = {"version": current.version}
        self.record(
            who, "rules.apply", source, before, {"version": applied.version, "changes": changes}
        )
        return result | {"applied": True, "version": applied.version}

    def silences(self, expired: bool) -> dict[str, Any]:
        views = silences_of(self.read(), self.clock(), expired)
        return {"silences": [v.as_json() for v in views]}

    def add_silence(self, body: SilenceIn, who: Caller) -> dict[str, Any]:
        try:
            silence = make_silence(
                body.matchers,
                body.duration,
                body.comment,
                body.created_by or who.name,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                now=self.clock(),
            )
        except SilenceError as exc:
            raise Rejected(422, "invalid_silence", str(exc)) from None
        _config_call(lambda: self.store.add_silence(silence))
        state = "active" if silence.active(self.clock()) else "upcoming"
        made = _silence_json(silence, state)
        self.record(who, "silence.add", silence.id, None, made)
        return made

    def delete_silence(self, silence_id: str, who: Caller | None = None) -> dict[str, Any]:
        try:
            gone = _config_call(lambda: delete_silence(self.store, silence_id))
        except SilenceNotFound as exc:
            raise Rejected(404, "not_found", str(exc)) from None
        except SilenceInFile as exc:
            raise Rejected(409, "silence_in_rule_file", str(exc)) from None
        ended = _silence_json(gone, "deleted")
        if who is not None:
            self.record(who, "silence.expire", silence_id, {"state": "active"}, ended)
        return ended

    def alerts(self, app: str, env: str) -> dict[str, Any]:
        rows = self.query(lambda c: current_alerts(c, app, env))
        firing = sum(1 for r in rows if r["state"] == "firing")
        return {
            "firing": firing,
            "pending": len(rows) - firing,
            "alerts": [jsonable(r) for r in rows],
        }

    def history(
        self, app: str, env: str, rule: str, since: datetime | None, limit: int
    ) -> dict[str, Any]:
        rows = self.query(lambda c: alert_history(c, app, env, rule, since, limit))
        return {"transitions": [jsonable(r) for r in rows]}


def _silence_json(silence: Any, state: str) -> dict[str, Any]:
    return SilenceView(silence, "api", state).as_json()


_T = TypeVar("_T")


def _config_call(run: Callable[[], _T]) -> _T:
    from shiftright_server.infra.alerting_config import ConfigStoreError

    try:
        return run()
    except ConfigStoreError as exc:
        raise _unavailable("config_unavailable", exc) from exc


def _unavailable(reason: str, exc: Exception) -> GatewayError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return GatewayError(503, reason, first, retry_after=5)
