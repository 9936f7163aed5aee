"""The flags API's request handling apart from the web routes: each operation is a call
to :class:`~shiftright_server.sinks.flags.admin.FlagAdmin` (what ``shiftright flags``
calls), its failures as the gateway's error shapes, every change audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from shiftright_server.infra.access.audit import Audit
from shiftright_server.infra.api.alerting_handler import check_if_match, invalid_file
from shiftright_server.infra.api.gate import Caller, TokenGate
from shiftright_server.infra.flags_config import FlagStoreError
from shiftright_server.producers.gateway.errors import GatewayError, Rejected
from shiftright_server.schemas.flag_file import FlagFileError
from shiftright_server.schemas.flags import FlagStatus
from shiftright_server.sinks.flags.admin import FlagAdmin
from shiftright_server.sinks.flags.flips import FlipRefused
from shiftright_server.streams.alerting.service import change_json

if TYPE_CHECKING:
    from shiftright_server.producers.gateway.app import KeyChecker

_T = TypeVar("_T")


class FlagsApi(TokenGate):
    """The request handling, with the flag topic passed in (tests give one in memory)."""

    what = "flags"

    def __init__(
        self,
        admin: FlagAdmin,
        tokens: KeyChecker,
        anonymous_reads: bool = False,
        audit: Audit | None = None,
    ) -> None:
        super().__init__(tokens, anonymous_reads, audit)
        self.admin = admin

    def statuses(self, app: str) -> dict[str, Any]:
        found = _store_call(lambda: self.admin.statuses(app))
        return {"flags": [s.model_dump(mode="json") for s in found]}

    def status(self, app: str, flag: str) -> FlagStatus:
        found = _store_call(lambda: self.admin.status(app, flag))
        if found is None:
            raise Rejected(404, "not_found", f"no flag {flag!r} applied for app {app!r}")
        return found

    def file(self, app: str) -> dict[str, Any]:
        applied = _store_call(lambda: self.admin.applied(app))
        if not applied.version:
            raise Rejected(404, "not_found", f"no flag file applied for app {app!r}")
        return {
            "app": app,
            "version": applied.version,
            "applied_by": applied.applied_by,
            "applied_at": applied.applied_at or None,
            "source": applied.source,
            "yaml": applied.text,
        }

    def put_file(
        self, app: str, text: str, who: Caller, dry_run: bool, if_match: str | None, source: str
    ) -> dict[str, Any]:
        try:
            current, _ = _store_call(lambda: self.admin.preview(text, source))
        except FlagFileError as exc:
            raise invalid_file(exc, "invalid_flags", "flag file") from None
        if current.app != app:
            raise Rejected(422, "wrong_app", f"the file is app {current.app!r}, not {app!r}")
        check_if_match(if_match, current.version, f"GET /files/{app}")
        done = _store_call(lambda: self.admin.apply(text, who.actor, source, dry_run))
        changes = [change_json(c) for c in done.changes]
        result = {
            "applied": done.applied is not None,
            "dry_run": dry_run,
            "version": done.applied.version if done.applied else current.version,
            "previous_version": current.version,
            "changes": changes,
        }
        if done.applied is not None:
            after = {"version": done.applied.version, "changes": changes}
            self.record(who, "flags.apply", app, {"version": current.version}, after)
        return result

    def flip(self, app: str, flag: str, env: str, to: str, reason: str, who: Caller) -> FlagStatus:
        before = self.status(app, flag).env(env)
        try:
            _store_call(lambda: self.admin.flip(app, flag, env, to, who.actor, reason))
        except (FlipRefused, ValidationError) as exc:
            raise Rejected(422, "flip_refused", _first_line(exc)) from None
        self.record(who, "flags.flip", f"{app}/{flag}/{env}", _was(before), {"to": to})
        return self.status(app, flag)

    def restore(self, app: str, flag: str, env: str, who: Caller) -> FlagStatus:
        before = self.status(app, flag).env(env)
        try:
            back = _store_call(lambda: self.admin.restore(app, flag, env, who.actor))
        except FlipRefused as exc:
            raise Rejected(409, "not_flipped", str(exc)) from None
        self.record(who, "flags.restore", f"{app}/{flag}/{env}", _was(before), {"to": back})
        return self.status(app, flag)


def _was(before: Any) -> dict[str, str] | None:
    return {"state": before.state, "flipped_to": before.flipped_to} if before else None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


def _store_call(run: Callable[[], _T]) -> _T:
    try:
        return run()
    except FlagStoreError as exc:
        raise GatewayError(503, "flags_unavailable", _first_line(exc), retry_after=5) from exc
