"""Alerting as code: rules, subscriptions, silences and inhibition, and the records the
evaluator emits (alert transitions, for the alert history).

A rule file is YAML (see ``schemas.rule_file``); these models are its contract.
Durations are seconds or strings such as ``30s``, ``5m``, ``1h``, ``2d``, ``1w``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

Severity = Literal["info", "warning", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
AlertState = Literal["inactive", "pending", "firing", "resolved"]
Channel = Literal["email", "webhook", "slack"]
Direction = Literal["up", "down", "both"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"`` ...; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    found = _DURATION.match(str(value))
    if not found:
        raise ValueError(f"bad duration {value!r}: expected e.g. 30s, 5m, 1h, 2d")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


Duration = Annotated[float, BeforeValidator(parse_duration)]

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|>=|<=|=)\s*"?(.*?)"?\s*$')


class Matcher(BaseModel):
    """``name=value``, ``!=``, ``=~`` / ``!~`` (anchored regex), and for ``severity`` also
    ``>=`` / ``<=`` by rank (info < warning < critical)."""

    model_config = ConfigDict(frozen=True)

    name: str
    op: Literal["=", "!=", "=~", "!~", ">=", "<="] = "="
    value: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            found = _MATCHER.match(data)
            if not found:
                raise ValueError(f'bad matcher {data!r}: expected name=value, name=~"regex" …')
            return {"name": found.group(1), "op": found.group(2), "value": found.group(3)}
        return data

    @model_validator(mode="after")
    def _check(self) -> Matcher:
        if self.op in ("=~", "!~"):
            re.compile(self.value)
        if self.op in (">=", "<=") and (
            self.name != "severity" or self.value not in SEVERITY_ORDER
        ):
            raise ValueError(">= and <= compare severities only: severity>=warning")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        if self.op in ("=~", "!~"):
            return (re.fullmatch(self.value, got) is not None) == (self.op == "=~")
        rank, want = SEVERITY_ORDER.get(got, -1), SEVERITY_ORDER[self.value]
        return rank >= want if self.op == ">=" else 0 <= rank <= want

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class Scope(BaseModel):
    """What a rule watches: one app and env (``*`` = any), one source kind, and filters on
    the rollup key (``key``: feature/route for usage, exception type for errors, host for
    health; or by its name: ``feature``, ``exception_type``, ``host``) or, for error-group
    rules, on ``group_id`` / ``exception_type``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app: str
    env: str = "prod"
    source: Literal["usage", "error", "health"] = "usage"
    filters: dict[str, str] = Field(default_factory=dict)
    per_key: bool = True  # one series per key (feature, host …); False: the keys summed


def _on_off(value: Any) -> Any:
    """YAML reads ``on`` / ``off`` as booleans: a flip's target is the word."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


#: ``on``, ``off`` or a variant's name.
FlipTarget = Annotated[str, BeforeValidator(_on_off)]


class FlipSpec(BaseModel):
    """``flip: {flag: new-checkout, env: prod, to: off, restore: auto, quiet: 5m}``: when
    the rule fires, the flag is flipped once (never over a person's flip, at most a few
    times per flag and hour); on resolve it is restored after ``quiet`` (``auto``) or
    waits for a person (``manual``). ``app`` and ``env`` default to the rule's scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flag: str = Field(min_length=1)
    app: str | None = None
    env: str | None = None
    to: FlipTarget = "off"
    restore: Literal["auto", "manual"] = "auto"
    quiet: Duration = 300.0
    #: Alert flips of this flag per hour at most (None: the notifier's flips_per_hour).
    max_per_hour: int | None = Field(default=None, ge=1)
    #: Where the flag lives: shiftright's flag files, or an Unleash server's feature.
    via: Literal["shiftright", "unleash"] = "shiftright"
    #: The Unleash project (None: the notifier's unleash_project).
    project: str | None = None

    @model_validator(mode="after")
    def _unleash_on_off(self) -> FlipSpec:
        if self.via == "unleash" and self.to not in ("on", "off"):
            raise ValueError("a flip via unleash turns a feature on or off, not to a variant")
        return self

    def where(self, scope: Scope) -> tuple[str, str]:
        """The (app, env) the flip acts on."""
        return self.app or scope.app, self.env or scope.env

    def describe(self, scope: Scope) -> str:
        app, env = self.where(scope)
        then = (
            f"restored {self.quiet:g}s after the alert resolves"
            if self.restore == "auto"
            else "restored by a person"
        )
        where = f"in Unleash ({env})" if self.via == "unleash" else f"in {env} ({app})"
        return f"turns flag {self.flag} {self.to} {where}; {then}"


#: Measures over rollups: count, rate (per second), failure_rate (per 1,000 requests),
#: avg:<m>, sum:<m>, max:<m>, min:<m> for a rolled-up measure m (duration_ms, a health
#: metric such as system.cpu.utilization, a custom gauge ...).
_MEASURE = re.compile(r"^(count|rate|failure_rate|(avg|sum|max|min):[A-Za-z0-9_.{}=\"-]+)$")


class _RuleBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=_NAME)
    description: str = ""
    scope: Scope
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    action_webhook: str | None = None  # called on firing and on resolve
    flip: FlipSpec | None = None  # the Big Red Button: flip a feature flag on firing
    enabled: bool = True

    @model_validator(mode="after")
    def _flip_target(self) -> _RuleBase:
        if self.flip is not None and "*" in self.flip.where(self.scope):
            raise ValueError("flip: name the app and env of the flag (the scope has *)")
        return self


class _MeasuredRule(_RuleBase):
    measure: str = "count"
    window: Duration = 60.0  # the measure is aggregated over this sliding window
    aggregate: Literal["avg", "sum", "max", "min", "last"] = "avg"

    @field_validator("measure")
    @classmethod
    def _measure(cls, value: str) -> str:
        if not _MEASURE.match(value):
            raise ValueError(
                f"unknown measure {value!r}: expected count, rate, failure_rate or avg:/sum:/max:/min:<measure>"
            )
        return value


class ThresholdRule(_MeasuredRule):
    kind: Literal["threshold"] = "threshold"
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    resolve_threshold: float | None = None  # hysteresis; default: the threshold

    @model_validator(mode="after")
    def _hysteresis(self) -> ThresholdRule:
        r = self.resolve_threshold
        if r is not None and (r > self.threshold if self.op[0] == ">" else r < self.threshold):
            side = "at or below" if self.op[0] == ">" else "at or above"
            raise ValueError(f"resolve_threshold must be {side} the threshold for op {self.op}")
        return self


class ChangeRule(_MeasuredRule):
    kind: Literal["change"] = "change"
    compare_to: Literal["previous_period", "same_time_last_week"] = "previous_period"
    percent: float = Field(gt=0)
    resolve_percent: float | None = Field(default=None, ge=0)
    direction: Direction = "both"
    min_volume: float = Field(default=0.0, ge=0)  # events in the baseline window


class AnomalyRule(_MeasuredRule):
    kind: Literal["anomaly"] = "anomaly"
    direction: Direction = "both"
    sensitivity: float = Field(default=0.5, ge=0, le=1)
    min_volume: float = Field(default=0.0, ge=0)  # events per point (and expected)
    warmup_points: int = Field(default=30, ge=1)
    window: Duration = 0.0  # default: score each point as it arrives


class AbsenceRule(_RuleBase):
    kind: Literal["absence"] = "absence"
    after: Duration = Field(gt=0)  # no data for this long
    #: only series that averaged at least this many events per point over their last
    #: hour of data are watched: a feature used twice an hour is not missed after 3 min
    min_volume: float = Field(default=0.0, ge=0)


GroupTransitionKind = Literal["new", "new_in_env", "regressed", "spiking", "unignored"]


def _default_group_transitions() -> list[GroupTransitionKind]:
    return ["new", "regressed", "spiking"]


class ErrorGroupRule(_RuleBase):
    kind: Literal["error_group"] = "error_group"
    transitions: list[GroupTransitionKind] = Field(
        default_factory=_default_group_transitions, min_length=1
    )
    resolve_after: Duration = 1800.0  # quiet for this long: resolved

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: Scope) -> Scope:
        return scope.model_copy(update={"source": "error"})


class CohortRule(_RuleBase):
    """The requests that evaluated ``flag`` to ``variant`` against those that evaluated it
    to ``baseline`` (the on-cohort against the off-cohort): fires when the cohort's error
    rate (errors per 1,000 usage events, over ``window``) reaches ``ratio`` × the
    baseline's and/or the baseline's + ``margin``, with ``min_volume`` usage events in each."""

    kind: Literal["cohort"] = "cohort"
    flag: str = Field(min_length=1)
    variant: str = "on"
    baseline: str = "off"
    window: Duration = 300.0
    ratio: float | None = Field(default=None, gt=1)
    margin: float | None = Field(default=None, gt=0)  # errors per 1,000 usage events
    min_volume: int = Field(default=100, ge=1)  # usage events in each cohort in the window

    @model_validator(mode="after")
    def _comparison(self) -> CohortRule:
        if self.ratio is None and self.margin is None:
            raise ValueError("a cohort rule needs ratio:, margin: or both")
        if "*" in (self.scope.app, self.scope.env):
            raise ValueError("a cohort rule names its app and env (no *)")
        return self


Rule = Annotated[
    ThresholdRule | ChangeRule | AnomalyRule | AbsenceRule | ErrorGroupRule | CohortRule,
    Field(discriminator="kind"),
]


class Subscription(BaseModel):
    """Someone who wants to hear about alerts whose labels match, on one channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    channel: Channel
    to: str  # e-mail address, webhook URL or Slack incoming-webhook URL
    matchers: list[Matcher] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)  # or subscribe to rules by name
    send_resolved: bool = True
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "app", "env"])
    group_wait: Duration = 1.0  # seconds, not Alertmanager's 30: notifications in seconds
    group_interval: Duration = 30.0
    repeat_interval: Duration = 4 * 3600.0

    def wants(self, labels: dict[str, str]) -> bool:
        by_rule = not self.rules or labels.get("alertname") in self.rules
        return by_rule and matches_all(self.matchers, labels)


class Silence(BaseModel):
    """Mutes notifications of matching alerts between ``starts_at`` and ``ends_at``
    (a snooze of one rule is a silence on ``alertname``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str = ""

    @model_validator(mode="after")
    def _order(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


class InhibitRule(BaseModel):
    """While a source alert fires, target alerts with the same ``equal`` labels are muted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_matchers: list[Matcher] = Field(
        default_factory=lambda: [Matcher.model_validate("severity=critical")]
    )
    target_matchers: list[Matcher] = Field(
        default_factory=lambda: [Matcher.model_validate("severity=warning")]
    )
    equal: list[str] = Field(default_factory=lambda: ["app", "env"])


class RuleFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    rules: list[Rule] = Field(default_factory=list)
    subscriptions: list[Subscription] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    inhibit: list[InhibitRule] = Field(default_factory=lambda: [InhibitRule()])

    @model_validator(mode="after")
    def _unique(self) -> RuleFile:
        for what, names in (
            ("rule", [r.name for r in self.rules]),
            ("subscription", [s.name for s in self.subscriptions]),
            ("silence", [s.id for s in self.silences]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {what} name(s): {', '.join(dupes)}")
        return self


# -- records ------------------------------------------------------------------------------


class AlertTransition(BaseModel):
    """One alert (a rule and one series of it) changed state; the alert history.

    Natural key: ``(rule, fingerprint, seq)``; ``seq`` counts the alert's transitions, so a
    replay of the same inputs re-emits identical rows. ``idempotency_key`` identifies the
    (alert, transition) for notification sinks."""

    model_config = ConfigDict(frozen=True)

    rule: str
    rule_kind: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    previous: AlertState
    state: AlertState
    ts: datetime
    active_since: datetime | None = None  # when the condition started to hold
    starts_at: datetime | None = None  # when it fired
    ends_at: datetime | None = None  # when it resolved
    value: float | None = None
    threshold: float | None = None
    seq: int = Field(ge=1)
    idempotency_key: str
    action_webhook: str | None = None


NotificationStatus = Literal["delivered", "failed", "retrying", "rate_limited"]


class NotificationRecord(BaseModel):
    """One outcome of delivering a notification or calling an action webhook (topic
    notifications.v1 → table ``alert_notifications``): what the team reads when they ask
    "did anyone get told?". Natural key: ``(idempotency_key, attempt)``."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    kind: Literal["notification", "action"] = "notification"
    subscription: str  # the subscription's name; for an action, the rule's
    channel: str  # email | webhook | slack | action
    target: str  # address or URL, credentials and query strings removed
    group_key: str = ""
    alert_status: str  # firing | resolved
    rules: list[str] = Field(default_factory=list)
    alert_keys: list[str] = Field(default_factory=list)  # the transitions it tells about
    status: NotificationStatus
    attempt: int = Field(ge=1)
    error: str = ""
    ts: datetime  # when this outcome happened
    first_ts: datetime  # when the notification was due (its first attempt)
