"""The release gate behind ``shiftright qa gate``: a candidate release in one env against
a baseline release (by default the previous one there), decided from the warehouse.

A release fails when it has error groups no earlier release had, an error rate or p95
latency beyond the baseline's by more than the thresholds (both with enough requests to
judge), or new routes with traffic that no test exercised. The decision is printed as
Markdown for CI and stored as a ``gate`` change event, so it shows on the timeline.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from shiftright_server.schemas import qa_queries as q
from shiftright_server.schemas.events import uuid7
from shiftright_server.sinks.rows import COLUMNS


@dataclass(frozen=True)
class Thresholds:
    #: How much the error rate (a fraction) may grow: 0.01 = one percentage point.
    error_rate_increase: float = 0.01
    #: How much p95 latency may grow, relative: 0.2 = 20 %.
    p95_increase: float = 0.2
    #: Requests each release needs before its rates and latency are judged.
    min_requests: int = 20


@dataclass
class Decision:
    app: str
    env: str
    release: str
    baseline: str
    candidate: dict[str, Any]
    previous: dict[str, Any]
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons


def decide(
    client: Any, app: str, env: str, release: str, baseline: str, limits: Thresholds
) -> Decision:
    """Read the candidate's and the baseline's health, new groups and untested routes."""
    candidate = _health(client, app, env, release)
    if not candidate:
        return Decision(app, env, release, baseline, {}, {}, [f"no requests of {release} in {env}"])
    baseline = baseline or str(candidate.get("previous_release") or "")
    previous = _health(client, app, env, baseline) if baseline else {}
    decision = Decision(app, env, release, baseline, candidate, previous)
    if not previous:
        decision.notes.append("no baseline release: rates and latency not compared")
    else:
        _compare(decision, limits)
    params = {"app": app, "env": env, "release": release, "since": candidate["first_seen"]}
    for group_id, title, errors, _ in client.query(q.NEW_GROUPS, parameters=params).result_rows:
        decision.reasons.append(f"new error group {title} ({group_id}): {errors} errors")
    params = {"app": app, "env": env, "release": release, "baseline": baseline}
    for name, requests in client.query(q.UNTESTED_NEW_ROUTES, parameters=params).result_rows:
        decision.reasons.append(f"untested new route {name}: {requests} requests")
    return decision


def _health(client: Any, app: str, env: str, release: str) -> dict[str, Any]:
    params = {"app": app, "env": env, "release": release}
    result = client.query(q.RELEASE_IN_ENV, parameters=params)
    rows = result.result_rows
    return dict(zip(result.column_names, rows[0], strict=True)) if rows else {}


def _compare(d: Decision, limits: Thresholds) -> None:
    now, then = d.candidate, d.previous
    if min(now["requests"], then["requests"]) < limits.min_requests:
        d.notes.append(f"fewer than {limits.min_requests} requests: rates not compared")
        return
    grew = now["error_rate"] - then["error_rate"]
    if grew > limits.error_rate_increase:
        d.reasons.append(
            f"error rate {now['error_rate']:.2%} vs {then['error_rate']:.2%} on {d.baseline} "
            f"(+{grew * 100:.2f} pp, limit +{limits.error_rate_increase * 100:.2f} pp)"
        )
    if _finite(now["p95_ms"]) and _finite(then["p95_ms"]) and then["p95_ms"] > 0:
        ratio = now["p95_ms"] / then["p95_ms"] - 1
        if ratio > limits.p95_increase:
            d.reasons.append(
                f"p95 latency {now['p95_ms']:.1f} ms vs {then['p95_ms']:.1f} ms on {d.baseline} "
                f"(+{ratio:.0%}, limit +{limits.p95_increase:.0%})"
            )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and value == value


def markdown(d: Decision) -> str:
    """The decision for a CI job's summary (app-sent names are escaped)."""
    verdict = "PASS" if d.passed else "FAIL"
    lines = [
        f"## shiftright QA gate: {md(d.app)} {md(d.release)} in {md(d.env)}: **{verdict}**",
        "",
        f"Baseline: {md(d.baseline) if d.baseline else 'none'}",
        "",
        f"| | baseline {md(d.baseline)} | candidate {md(d.release)} |",
        "|---|---|---|",
    ]
    for label, key, show in _ROWS:
        lines.append(f"| {label} | {show(d.previous.get(key))} | {show(d.candidate.get(key))} |")
    lines += ["", "### Reasons" if d.reasons else "No reason to stop this release.", ""]
    lines += [f"- {md(reason)}" for reason in d.reasons]
    lines += [f"- note: {md(note)}" for note in d.notes]
    return "\n".join(lines) + "\n"


def _show(fmt: str) -> Any:
    return lambda v: fmt.format(v) if _finite(v) else "–"


_ROWS = (
    ("requests", "requests", _show("{:,}")),
    ("error rate", "error_rate", _show("{:.2%}")),
    ("p95 latency", "p95_ms", _show("{:.1f} ms")),
    ("CPU per request", "cpu_ms_per_request", _show("{:.2f} ms")),
    ("memory per request", "memory_mb_per_request", _show("{:.3f} MB")),
)


def md(text: str) -> str:
    """Text safe inside a Markdown table cell or list item: no markup, no HTML."""
    out = str(text).replace("\\", "\\\\").replace("\n", " ").replace("\r", " ")
    for char in "|`*_[]<>#!":
        out = out.replace(char, "\\" + char)
    return out


def record(client: Any, d: Decision, actor: str) -> None:
    """Store the decision as a ``gate`` change event of the candidate's app, env and release."""
    now_ms = int(time.time() * 1000)
    values = {
        "event_id": uuid7(),
        "ts": now_ms,
        "app": d.app,
        "env": d.env,
        "release": d.release,
        "host": socket.gethostname()[:200],
        "instance": f"shiftright-qa-gate:{os.getpid()}",
        "origin": "test",
        "attributes": {"qa.gate.reasons": str(len(d.reasons))},
        "change_type": "gate",
        "name": f"qa gate {d.release}"[:200],
        "value": "pass" if d.passed else "fail",
        "previous_value": d.baseline[:200],
        "actor": actor[:200],
        "description": "; ".join(d.reasons)[:2000] or "passed",
        "received_at": now_ms,
    }
    names = COLUMNS["events_change"]
    row = [values.get(name, _EMPTY.get(name, "")) for name in names]
    client.insert("events_change", [row], column_names=list(names))


_EMPTY: dict[str, Any] = {"_partition": 0, "_offset": 0, "_index": 0}
