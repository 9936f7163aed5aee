"""Feature flags as code: toggles, flags and ticket flags of one app, and the flip records.

A flag file is YAML (see ``schemas.flag_file``); these models are its contract::

    version: 1
    app: checkout
    flags:
      - name: new-checkout          # a toggle: on/off per environment
        kind: toggle
        environments: {prod: on, preprod: on}
      - name: layout                # a flag: variants, a default, targeting
        kind: flag
        variants: {classic: "v1", wide: "v2"}
        default: classic
        targeting:
          - users: [u-1, u-2]
            variant: wide
          - attributes: {plan: [pro, enterprise]}
            variant: wide
          - percentage: {wide: 20, classic: 80}
      - name: bulk-export           # a ticket flag: on for a usage segment
        kind: ticket
        segment: {event: checkout.submit, at_least: 1000, window: 24h, leave_below: 800}

An environment not listed takes ``default_state``; a flag that is off in an environment
makes the app use its own default (the code path it had before the flag).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from shiftright_server.schemas.alerts import Duration, FlipTarget

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
#: Variant values a flag may carry (OpenFeature's boolean, string, number and object).
VariantValue = bool | int | float | str | dict[str, Any] | list[Any]
#: At most this many customers/users in one targeting list (a longer list is a segment).
MAX_LIST = 10_000


class _FlagBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME, max_length=200)
    description: str = ""
    owner: str = ""
    #: on/off per environment (``on`` / ``off`` / true / false).
    environments: dict[str, bool] = Field(default_factory=dict)
    default_state: bool = False  # for environments not listed

    def enabled(self, env: str) -> bool:
        return self.environments.get(env, self.default_state)


class Toggle(_FlagBase):
    """On or off per environment: the troublesome change's own kill switch."""

    kind: Literal["toggle"] = "toggle"


class TargetRule(BaseModel):
    """Who gets which variant: the first rule that matches decides.

    Exactly one condition: ``users``, ``customers``, ``attributes`` (every named attribute
    must equal the value or be one of a list) or ``percentage`` (a split over variants by
    stable murmur3 buckets 0-99 of the targeting key; weights sum to 100)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: list[str] | None = Field(default=None, max_length=MAX_LIST)
    customers: list[str] | None = Field(default=None, max_length=MAX_LIST)
    attributes: dict[str, str | list[str]] | None = None
    percentage: dict[str, int] | None = None
    variant: str | None = None  # for users / customers / attributes

    @model_validator(mode="after")
    def _one(self) -> TargetRule:
        given = [n for n in ("users", "customers", "attributes", "percentage") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "a targeting rule takes exactly one of users, customers, attributes, percentage"
            )
        if self.percentage is not None:
            if self.variant is not None:
                raise ValueError("percentage names its variants itself: no variant:")
            if any(w < 0 for w in self.percentage.values()) or sum(self.percentage.values()) != 100:
                raise ValueError("percentage weights must be ≥ 0 and sum to 100")
        elif self.variant is None:
            raise ValueError(f"{given[0]} needs the variant it gives")
        return self

    def variants(self) -> list[str]:
        return list(self.percentage) if self.percentage is not None else [str(self.variant)]


class Flag(_FlagBase):
    """Variants, a default variant and targeting rules (first match wins)."""

    kind: Literal["flag"] = "flag"
    variants: dict[str, VariantValue] = Field(min_length=1)
    default: str
    targeting: list[TargetRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> Flag:
        known = set(self.variants)
        unknown = sorted({v for rule in self.targeting for v in rule.variants()} - known)
        if self.default not in known:
            unknown.insert(0, self.default)
        if unknown:
            raise ValueError(
                f"unknown variant(s) {', '.join(unknown)}; variants: {', '.join(sorted(known))}"
            )
        return self


class Segment(BaseModel):
    """Customers with at least ``at_least`` usage events named ``event`` in the rolling
    ``window``; a member leaves only when its count falls below ``leave_below`` (the
    hysteresis band keeps customers at the boundary from flapping)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str = Field(min_length=1)
    at_least: int = Field(gt=0)
    window: Duration = 86400.0
    leave_below: int | None = Field(default=None, gt=0)

    @field_validator("window")
    @classmethod
    def _window(cls, value: float) -> float:
        if value < 60:
            raise ValueError("the window is at least 60s")
        return value

    @model_validator(mode="after")
    def _band(self) -> Segment:
        if self.leave_below is not None and self.leave_below > self.at_least:
            raise ValueError("leave_below must be at or below at_least")
        return self

    @property
    def exit_below(self) -> int:
        return self.leave_below if self.leave_below is not None else self.at_least


class TicketFlag(_FlagBase):
    """On for the customers in a segment defined by their rolling usage volume."""

    kind: Literal["ticket"] = "ticket"
    segment: Segment
    default_state: bool = True


AnyFlag = Annotated[Toggle | Flag | TicketFlag, Field(discriminator="kind")]


class FlagFile(BaseModel):
    """The flags of one app."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    app: str = Field(min_length=1, max_length=200)
    flags: list[AnyFlag] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> FlagFile:
        names = [f.name for f in self.flags]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate flag name(s): {', '.join(dupes)}")
        return self

    def named(self, name: str) -> Toggle | Flag | TicketFlag | None:
        return next((f for f in self.flags if f.name == name), None)


# -- flips -----------------------------------------------------------------------------------
Actor = Annotated[str, Field(min_length=1, max_length=200)]


class Flip(BaseModel):
    """A flag forced on, off or to one variant in one environment, until restored; a
    restore is the same record with ``to`` empty (so the history of alert flips the
    hourly cap counts survives it).

    ``actor`` is a person, a token (``token:<name>``) or an alert (``alert:<rule>``);
    ``flip_id`` identifies the flip (an alert's is its firing's idempotency key, so a
    replay finds its flip already written)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app: str
    flag: str
    env: str
    to: FlipTarget = ""  # on | off | a variant; "" restored (the file's state holds)
    actor: Actor
    reason: str = ""
    at: datetime
    flip_id: str = ""
    restore: Literal["auto", "manual"] = "manual"
    quiet: float = 0.0  # seconds of quiet before an automatic restore
    resolved_at: datetime | None = None  # the alert resolved: restore after quiet
    recent: list[float] = Field(default_factory=list)  # alert flips (epoch s) last hour

    @property
    def by_alert(self) -> bool:
        return self.actor.startswith("alert:")


# -- what a flag is now (the CLI's list, the HTTP API and the dashboard show this) -----------
class EnvState(BaseModel):
    """One flag in one environment: the state apps evaluate and the last flip record."""

    model_config = ConfigDict(frozen=True)

    env: str
    state: str  # on | off | a variant: what apps evaluate now
    file_state: str  # on | off: what the flag file says
    flipped_to: str = ""  # the flip in force ("" none: the file's state holds)
    actor: str = ""  # who made the last flip or restore
    at: datetime | None = None  # when
    reason: str = ""
    held_by_alert: bool = False  # an alert's flip is in force


class FlagStatus(BaseModel):
    """One applied flag: its definition's outline and its state per environment."""

    model_config = ConfigDict(frozen=True)

    app: str
    name: str
    kind: str
    description: str = ""
    variants: list[str] = Field(default_factory=list)
    environments: list[EnvState] = Field(default_factory=list)

    def env(self, env: str) -> EnvState | None:
        return next((e for e in self.environments if e.env == env), None)
