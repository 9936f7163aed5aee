"""Replay stored history through the same rule code the stream runs.

``backtest(rules, rollups)`` feeds closed rollups in bucket order to a fresh
:class:`Evaluator` and evaluates whenever event time reaches the end of a bucket plus
the allowed lateness — when the stream would have evaluated it — and every ``step``
seconds in between (so absence rules notice silence). It returns every transition, so
``shiftright backtest RULE --since 30d`` can print when a rule would have fired.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from shiftright_server.schemas.alerts import AlertTransition, Rule
from shiftright_server.schemas.records import Rollup
from shiftright_server.streams.alerting.evaluator import Evaluator


def backtest(
    rules: Iterable[Rule],
    rollups: Iterable[Rollup],
    lateness: timedelta = timedelta(seconds=10),
    step: timedelta = timedelta(seconds=60),
    until: datetime | None = None,
) -> list[AlertTransition]:
    ev = Evaluator(rules)
    out: list[AlertTransition] = []
    by_due: dict[datetime, list[Rollup]] = {}
    for r in rollups:  # a bucket reaches the stream once the watermark passes its end
        due = r.bucket_start + timedelta(seconds=r.bucket_seconds) + lateness
        by_due.setdefault(due, []).append(r)
    clock: datetime | None = None
    for due in sorted(by_due):
        if clock is not None:
            clock = _advance(ev, clock, due, step, out, inclusive=False)
        for r in sorted(by_due[due], key=lambda r: (r.app, r.env, r.kind, r.key)):
            ev.observe_rollup(r)
        clock = due
        out.extend(ev.evaluate(due))
    if clock is not None and until is not None:
        _advance(ev, clock, until, step, out, inclusive=True)
    return out


def _advance(
    ev: Evaluator,
    clock: datetime,
    to: datetime,
    step: timedelta,
    out: list[AlertTransition],
    inclusive: bool,
) -> datetime:
    """Evaluate every ``step`` after ``clock`` before ``to`` (and at ``to`` if
    ``inclusive``); the new clock."""
    while clock + step < to:
        clock += step
        out.extend(ev.evaluate(clock))
    if inclusive and to > clock:
        clock = to
        out.extend(ev.evaluate(clock))
    return clock


def when_fired(transitions: Iterable[AlertTransition]) -> list[tuple[datetime, datetime | None]]:
    """(fired, resolved) per firing episode, in order; resolved None if still firing."""
    open_: dict[str, datetime] = {}
    episodes: list[tuple[str, datetime, datetime | None]] = []
    for t in transitions:
        if t.state == "firing":
            open_[t.fingerprint] = t.ts
        elif t.state == "resolved" and t.fingerprint in open_:
            episodes.append((t.fingerprint, open_.pop(t.fingerprint), t.ts))
    episodes += [(fp, ts, None) for fp, ts in open_.items()]
    return [(a, b) for _, a, b in sorted(episodes, key=lambda e: e[1])]
