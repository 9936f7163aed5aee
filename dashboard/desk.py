"""What the alert pages need of the alerting service: the applied rule file, applying a
new version, silences and backtests.

The service itself (the configuration store, silences, the stream's rule code replayed
over stored rollups) lives below the command line, out of the dashboard's layer; the
process that starts the dashboard passes an :class:`AlertingDesk` to ``create_app``
(``shiftright_server.infra.ops.dashboard``). Without one, :class:`NoDesk` explains why
rules cannot be changed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from shiftright_server.schemas.alerts import Rule, RuleFile

if TYPE_CHECKING:
    from fastapi import Request


class DeskUnavailable(RuntimeError):
    """The alerting configuration cannot be read or changed now (says why)."""


class VersionConflict(RuntimeError):
    """Someone applied another version of the rule file since the form was opened."""


class SilenceInvalid(ValueError):
    """A silence that cannot be made; the message says what is wrong."""


class SilenceRefused(LookupError):
    """A silence that cannot be expired here (unknown, or written in the rule file)."""


@dataclass(frozen=True)
class RuleSet:
    version: int  # 0: no rule file applied yet
    text: str
    rules: RuleFile
    applied_by: str = ""


@dataclass(frozen=True)
class SilenceRow:
    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    origin: str  # "file" or "api"
    state: str  # active, upcoming


@dataclass(frozen=True)
class Fired:
    """One firing of the rule in a backtest."""

    fired: datetime
    resolved: datetime | None  # None: still firing at the end
    labels: dict[str, str]
    value: float | None


@dataclass(frozen=True)
class Backtest:
    """When a rule would have fired over a period, and the measure it watched."""

    start: datetime
    end: datetime
    fired: list[Fired] = field(default_factory=list)
    points: list[tuple[datetime, float]] = field(default_factory=list)  # the measure
    rollups: int = 0  # rollups read (with the warm-up before the period)
    note: str = ""  # why there is no backtest (e.g. an error-group rule)


class AlertingDesk(Protocol):
    def rules(self) -> RuleSet: ...

    def apply(self, text: str, author: str, expected_version: int) -> int:
        """Apply a rule file (already checked with ``load_rules``); the new version.
        :class:`VersionConflict` if the applied version is not ``expected_version``."""
        ...

    def silences(self) -> list[SilenceRow]: ...

    def add_silence(
        self, matchers: list[str], duration: str, comment: str, author: str
    ) -> SilenceRow: ...

    def expire_silence(self, silence_id: str) -> None: ...

    def backtest(self, rule: Rule, start: datetime, end: datetime) -> Backtest: ...


class NoDesk:
    """A dashboard started without the alerting service: rules are read-only."""

    WHY = (
        "rule editing needs the alerting service: start the dashboard with "
        "`shiftright up` (or python -m shiftright_server.infra.ops.dashboard)"
    )

    def rules(self) -> RuleSet:
        raise DeskUnavailable(self.WHY)

    def apply(self, text: str, author: str, expected_version: int) -> int:
        raise DeskUnavailable(self.WHY)

    def silences(self) -> list[SilenceRow]:
        raise DeskUnavailable(self.WHY)

    def add_silence(
        self, matchers: list[str], duration: str, comment: str, author: str
    ) -> SilenceRow:
        raise DeskUnavailable(self.WHY)

    def expire_silence(self, silence_id: str) -> None:
        raise DeskUnavailable(self.WHY)

    def backtest(self, rule: Rule, start: datetime, end: datetime) -> Backtest:
        raise DeskUnavailable(self.WHY)


def applied_rules(request: Request) -> list[Rule]:
    """The applied rules of the app's desk ([] when the service is unavailable)."""
    desk: AlertingDesk = request.app.state.desk
    try:
        return list(desk.rules().rules.rules)
    except DeskUnavailable:
        return []
