"""The flag service as the dashboard's flag pages use it (:class:`FlagDesk`): the same
:class:`~shiftright_server.sinks.flags.admin.FlagAdmin` behind ``shiftright flags`` and
the flags HTTP API. It lives at the top of ``infra`` because the dashboard's own layer
may not import the flipper's rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from shiftright_server.dashboard.flag_desk import FlagsUnavailable, FlipInvalid
from shiftright_server.infra.flags_config import FlagStoreError, FlagTopic
from shiftright_server.schemas.flags import FlagStatus
from shiftright_server.sinks.flags.admin import FlagAdmin
from shiftright_server.sinks.flags.flips import FlipRefused

_T = TypeVar("_T")


class ServiceFlags:
    """:class:`FlagDesk` over the flag topic."""

    def __init__(self, admin: FlagAdmin) -> None:
        self.admin = admin

    def statuses(self) -> list[FlagStatus]:
        return _call(self.admin.statuses)

    def definition(self, app: str, flag: str) -> dict[str, Any] | None:
        applied = _call(lambda: self.admin.applied(app))
        found = applied.flags.named(flag) if applied.flags is not None else None
        return found.model_dump(mode="json", exclude_defaults=True) if found else None

    def flip(self, app: str, flag: str, env: str, to: str, actor: str, reason: str) -> None:
        _call(lambda: self.admin.flip(app, flag, env, to, actor, reason))

    def restore(self, app: str, flag: str, env: str, actor: str) -> None:
        _call(lambda: self.admin.restore(app, flag, env, actor))


def _call(run: Callable[[], _T]) -> _T:
    try:
        return run()
    except (FlipRefused, ValidationError) as exc:
        raise FlipInvalid(str(exc).splitlines()[0]) from None
    except FlagStoreError as exc:
        raise FlagsUnavailable(str(exc)) from exc


def service_flags(bootstrap: str, namespace: str) -> ServiceFlags:
    return ServiceFlags(FlagAdmin(FlagTopic(bootstrap, namespace)))
