"""The alerting service as the dashboard's pages use it (:class:`AlertingDesk`): the
configuration store, silences and backtests of :mod:`shiftright_server.streams.alerting`
— the same functions behind ``shiftright rules`` / ``silence`` / ``backtest`` and the
alerting HTTP API. It lives at the top of ``infra`` because the dashboard's own layer may
not import the stream worker's rule code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from shiftright_server.dashboard.desk import (
    Backtest,
    DeskUnavailable,
    Fired,
    RuleSet,
    SilenceInvalid,
    SilenceRefused,
    SilenceRow,
    VersionConflict,
)
from shiftright_server.schemas.alerts import CohortRule, ErrorGroupRule, Rule
from shiftright_server.schemas.records import Rollup
from shiftright_server.streams.alerting.history import read_rollups, run_backtest, warmup_for
from shiftright_server.streams.alerting.measures import Sample, sample_of, scope_matches
from shiftright_server.streams.alerting.service import (
    AlertingStore,
    SilenceError,
    SilenceInFile,
    SilenceNotFound,
    SilenceView,
    delete_silence,
    make_silence,
    silences_of,
)

if TYPE_CHECKING:
    from shiftright_server.infra.alerting_config import AlertingConfig

#: Seconds a read of the configuration is reused (changes made here reread at once).
REREAD_S = 5.0
#: The newest buckets of a live period are still being closed: the replay stops before.
SETTLING = timedelta(minutes=2)


class ServiceDesk:
    """:class:`AlertingDesk` over a configuration store and a warehouse client."""

    def __init__(
        self,
        store: AlertingStore,
        warehouse: Callable[[], Any],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self._warehouse = warehouse
        self.clock = clock
        self._read: tuple[float, AlertingConfig] | None = None
        self._lock = threading.Lock()

    def _config(self, fresh: bool = False) -> AlertingConfig:
        """The store's configuration, read at most every :data:`REREAD_S` seconds (the
        health panel asks for the rules on every poll); ``fresh`` reads it now."""
        with self._lock:
            now = time.monotonic()
            if fresh or self._read is None or now - self._read[0] > REREAD_S:
                self._read = (now, _call(self.store.read))
            return self._read[1]

    def _changed(self) -> None:
        with self._lock:
            self._read = None

    def rules(self) -> RuleSet:
        c = self._config()
        return RuleSet(c.version, c.text, c.rules, c.applied_by)

    def apply(self, text: str, author: str, expected_version: int) -> int:
        current = self._config(fresh=True)
        if current.version != expected_version:
            raise VersionConflict(
                f"version {current.version} of the rule file was applied "
                f"(by {current.applied_by or 'someone'}) after this form opened on version "
                f"{expected_version}: open the rule again and redo the change"
            )
        if current.version and text == current.text:
            return current.version
        applied = _call(lambda: self.store.apply(text, author, "dashboard"))
        self._changed()
        return applied.version

    def silences(self) -> list[SilenceRow]:
        views = silences_of(self._config(), self.clock())
        return [_row(v) for v in views]

    def add_silence(
        self, matchers: list[str], duration: str, comment: str, author: str
    ) -> SilenceRow:
        now = self.clock()
        try:
            silence = make_silence(matchers, duration or None, comment, author, now=now)
        except SilenceError as exc:
            raise SilenceInvalid(str(exc)) from None
        _call(lambda: self.store.add_silence(silence))
        self._changed()
        return _row(SilenceView(silence, "api", "active"))

    def expire_silence(self, silence_id: str) -> None:
        try:
            _call(lambda: delete_silence(self.store, silence_id))
        except (SilenceNotFound, SilenceInFile) as exc:
            raise SilenceRefused(str(exc)) from None
        finally:
            self._changed()

    def backtest(self, rule: Rule, start: datetime, end: datetime) -> Backtest:
        if isinstance(rule, ErrorGroupRule):
            note = "error-group rules follow error-group transitions, not rollups: no backtest"
            return Backtest(start, end, note=note)
        if isinstance(rule, CohortRule):
            note = "cohort rules read the flags column, not rollups: shiftright backtest RULE"
            return Backtest(start, end, note=note)
        try:
            client = self._warehouse()
            try:
                rollups = read_rollups(client, rule, start - warmup_for(rule), end)
            finally:
                client.close()
        except Exception as exc:
            raise DeskUnavailable(f"the warehouse could not be read: {_first(exc)}") from exc
        stop = min(end, self.clock() - SETTLING)
        found = run_backtest(rule, rollups, start, stop)
        fired = [Fired(e.fired, e.resolved, e.labels, e.value) for e in found]
        return Backtest(start, end, fired, _points(rule, rollups, start), len(rollups))


def _points(rule: Rule, rollups: list[Rollup], start: datetime) -> list[tuple[datetime, float]]:
    """The rule's measure per bucket from ``start``: its keys merged when the rule sums
    them, else the highest key's (the series most likely to cross an upper threshold)."""
    measure = getattr(rule, "measure", "count")
    per: dict[datetime, dict[str, Sample]] = {}
    for r in rollups:
        if r.bucket_start < start or not scope_matches(rule.scope, r.app, r.env, r.kind, r.key):
            continue
        sample = sample_of(measure, r)
        if sample is None:
            continue
        key = f"{r.app}/{r.env}/{r.key}" if rule.scope.per_key else ""
        keys = per.setdefault(r.bucket_start, {})
        keys[key] = _merge(keys[key], sample) if key in keys else sample
    return [(ts, max(s.value() for s in per[ts].values())) for ts in sorted(per)]


def _merge(a: Sample, b: Sample) -> Sample:
    if a.merge == "max":
        return a if a.num >= b.num else b
    if a.merge == "min":
        return a if a.num <= b.num else b
    den = a.den + b.den if a.merge == "add" else a.den
    return Sample(a.ts_ms, a.num + b.num, den, a.volume + b.volume, a.merge)


def _row(view: SilenceView) -> SilenceRow:
    s = view.silence
    matchers = [str(m) for m in s.matchers]
    return SilenceRow(
        s.id, matchers, s.starts_at, s.ends_at, s.created_by, s.comment, view.origin, view.state
    )


_T = TypeVar("_T")


def _call(run: Callable[[], _T]) -> _T:
    from shiftright_server.infra.alerting_config import ConfigStoreError

    try:
        return run()
    except ConfigStoreError as exc:
        raise DeskUnavailable(f"the alerting configuration is unreachable: {_first(exc)}") from exc


def _first(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)
