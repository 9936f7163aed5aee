"""Cohort rules: the on-cohort's error rate against the off-cohort's, by ratio and/or
margin with a minimum volume, through the evaluator's lifecycle, the watcher's rounds
(state kept across a restart) and the backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shiftright_server.infra.alerting_config import AlertingConfig
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas.alerts import AlertTransition, CohortRule
from shiftright_server.schemas.rule_file import RuleFileError, load_rules
from shiftright_server.streams.alerting.cohort import Cohorts, backtest, read
from shiftright_server.streams.alerting.cohort_watch import CohortWatcher

RULES = """rules:
  - name: new-checkout-worse
    kind: cohort
    scope: {app: checkout, env: prod}
    flag: new-checkout
    ratio: 2
    margin: 5
    min_volume: 100
    window: 5m
    for: 0s
    flip: {flag: new-checkout, to: off}
"""
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _rule(**changes: Any) -> CohortRule:
    (rule,) = load_rules(RULES).rules
    assert isinstance(rule, CohortRule)
    return rule.model_copy(update=changes)


def test_the_cohort_fires_when_worse_by_both_ratio_and_margin_with_volume() -> None:
    rule = _rule()
    worse = read(rule, Cohorts((30, 1000), (5, 1000)))
    assert (worse.rate, worse.limit, worse.enough) == (30.0, 10.0, True)  # max(5×2, 5+5)
    close = read(rule, Cohorts((9, 1000), (5, 1000)))
    assert close.rate < close.limit  # 9 per 1,000 against 10: not worse enough
    thin = read(rule, Cohorts((30, 1000), (0, 99)))
    assert not thin.enough  # the baseline has too little traffic to compare with
    clean = read(_rule(margin=None), Cohorts((0, 500), (0, 500)))
    assert clean.rate < clean.limit  # no errors anywhere: never "worse by a ratio"


def test_a_cohort_rule_needs_a_comparison_and_a_named_app() -> None:
    with pytest.raises(RuleFileError, match="ratio:, margin: or both"):
        load_rules(RULES.replace("    ratio: 2\n", "").replace("    margin: 5\n", ""))
    with pytest.raises(RuleFileError, match="no \\*"):
        load_rules(
            RULES.replace("env: prod", "env: '*'").replace(
                "    flip: {flag: new-checkout, to: off}\n", ""
            )
        )


class Warehouse:
    """Answers the counts query with the rows of the last window set."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.asked: list[dict[str, Any]] = []
        self.down = False

    def set(self, on: tuple[int, int], off: tuple[int, int]) -> None:
        self.rows = [(T0, "on", *on), (T0, "off", *off)]

    def query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if self.down:
            raise ConnectionError("warehouse away")
        self.asked.append(params)
        return self.rows


def _watcher(tmp_path: Path, wh: Warehouse, sent: list[AlertTransition]) -> CohortWatcher:
    watcher = CohortWatcher(Settings(state_dir=tmp_path), wh.query, sent.extend)
    watcher.configure(AlertingConfig(rules=load_rules(RULES)))
    return watcher


def test_the_watcher_fires_resolves_and_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    wh, sent = Warehouse(), []  # type: tuple[Warehouse, list[AlertTransition]]
    watcher = _watcher(tmp_path, wh, sent)
    wh.set(on=(40, 1000), off=(4, 1000))
    (fired,) = watcher.round(T0)
    assert (fired.state, fired.value, fired.threshold) == ("firing", 40.0, 9.0)
    assert fired.labels["flag"] == "new-checkout"
    assert "turns flag new-checkout off" in fired.annotations["flag_flip"]
    assert (wh.asked[0]["flag"], wh.asked[0]["variants"]) == ("new-checkout", ["on", "off"])
    again = _watcher(tmp_path, wh, sent)  # a restart: still firing, nothing new
    assert again.round(T0 + timedelta(seconds=5)) == []
    wh.down = True
    assert again.round(T0 + timedelta(seconds=10)) == []  # logged, retried next round
    wh.down = False
    wh.set(on=(5, 1000), off=(4, 1000))
    (resolved,) = again.round(T0 + timedelta(seconds=15))
    assert resolved.state == "resolved" and resolved.seq == fired.seq + 1
    assert [t.state for t in sent] == ["firing", "resolved"]


def test_the_backtest_slides_the_window_over_the_stored_buckets() -> None:
    rule = _rule(window=120.0)
    rows = []
    for minute in range(10):  # the on-cohort goes bad from minute 4 to minute 6
        bad = 4 <= minute <= 6
        at = T0 + timedelta(minutes=minute)
        rows += [(at, "on", 50 if bad else 2, 100), (at, "off", 2, 100)]

    def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [r for r in rows if params["start"] <= r[0] < params["end"]]

    found = backtest(rule, query, T0 + timedelta(minutes=2), T0 + timedelta(minutes=10), 60)
    states = [(t.state, int((t.ts - T0).total_seconds() // 60)) for t in found]
    assert states == [("firing", 5), ("resolved", 9)]
