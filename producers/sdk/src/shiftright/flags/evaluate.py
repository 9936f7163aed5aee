"""Flag definitions compiled for one environment, and their evaluation (no I/O, no locks).

A :class:`Snapshot` is what the server publishes for one app: the flag definitions (the
validated flag file as JSON), the flips in force (``overrides``, per ``flag|env``) and
ticket-flag segment membership (``members``, per ``flag|env``). :func:`compile_snapshot`
turns it into one :class:`Compiled` per flag for the app's environment, once per change,
so an evaluation is a few dict and set look-ups.

An evaluation gives ``(value, variant, reason)`` with OpenFeature's reasons: ``STATIC``
(one value for everyone), ``TARGETING_MATCH`` (a users / customers / attributes rule or a
segment), ``SPLIT`` (a percentage), ``DEFAULT`` (no rule matched) and ``DISABLED`` (off in
this environment: the caller's own default, variant ``off``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shiftright.flags.murmur import FlagBuckets

Result = tuple[Any, str, str]
#: Buckets remembered per (flag, key): a returning user skips the hash (cleared when full).
_BUCKETS: dict[tuple[str, str], float] = {}
_MAX_BUCKETS = 100_000
DISABLED: Result = (None, "off", "DISABLED")
_ON: Result = (True, "on", "STATIC")


@dataclass(frozen=True)
class Snapshot:
    """The flag state of one app as the server publishes it (also the fail-static file)."""

    app: str = ""
    version: int = 0
    flags: list[dict[str, Any]] = field(default_factory=list)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, frozenset[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        members = {k: sorted(v) for k, v in self.members.items()}
        return {
            "app": self.app,
            "version": self.version,
            "flags": self.flags,
            "overrides": self.overrides,
            "members": members,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Snapshot:
        members = {str(k): frozenset(map(str, v)) for k, v in (doc.get("members") or {}).items()}
        return cls(
            app=str(doc.get("app", "")),
            version=int(doc.get("version", 0)),
            flags=list(doc.get("flags") or []),
            overrides=dict(doc.get("overrides") or {}),
            members=members,
        )


class Compiled:
    """One flag in one environment, ready to evaluate."""

    __slots__ = ("name", "kind", "static", "rules", "default", "members")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.static: Result | None = None  # the same answer for everyone
        self.rules: list[_Rule] = []
        self.default: Result = DISABLED
        self.members: frozenset[str] = frozenset()

    def evaluate(self, user: str, customer: str, attributes: Mapping[str, str]) -> Result:
        static = self.static
        if static is not None:
            return static
        if self.kind == "ticket":
            return (True, "on", "TARGETING_MATCH") if customer in self.members else self.default
        for rule in self.rules:
            found = rule.match(self.name, user, customer, attributes)
            if found is not None:
                return found
        return self.default


class _Rule:
    __slots__ = ("users", "customers", "attributes", "split", "result", "buckets")

    def __init__(self, spec: Mapping[str, Any], variants: Mapping[str, Any], flag: str) -> None:
        self.users = frozenset(spec.get("users") or ())
        self.customers = frozenset(spec.get("customers") or ())
        self.attributes = {
            k: frozenset([v] if isinstance(v, str) else v)
            for k, v in (spec.get("attributes") or {}).items()
        }
        weights = spec.get("percentage") or {}
        edge, split = 0.0, []
        for variant, weight in weights.items():
            edge += weight
            split.append((edge, (variants[variant], variant, "SPLIT")))
        self.split: list[tuple[float, Result]] = split
        self.buckets = FlagBuckets(flag)
        variant = spec.get("variant")
        self.result: Result | None = (
            (variants[variant], variant, "TARGETING_MATCH") if variant is not None else None
        )

    def match(
        self, flag: str, user: str, customer: str, attributes: Mapping[str, str]
    ) -> Result | None:
        if self.split:
            key = user or customer
            if not key:
                return None
            position = _BUCKETS.get((flag, key))
            if position is None:
                if len(_BUCKETS) >= _MAX_BUCKETS:
                    _BUCKETS.clear()
                position = _BUCKETS[(flag, key)] = self.buckets.bucket(key)
            for edge, result in self.split:
                if position < edge:
                    return result
            return self.split[-1][1]
        if self.users:
            return self.result if user in self.users else None
        if self.customers:
            return self.result if customer in self.customers else None
        for name, allowed in self.attributes.items():
            if attributes.get(name) not in allowed:
                return None
        return self.result


def compile_snapshot(snapshot: Snapshot, env: str) -> dict[str, Compiled]:
    """Every flag of the snapshot, compiled for ``env`` (a broken flag is left out)."""
    out: dict[str, Compiled] = {}
    for spec in snapshot.flags:
        try:
            compiled = compile_flag(spec, env, snapshot)
        except (KeyError, TypeError, ValueError):
            continue
        out[compiled.name] = compiled
    return out


def compile_flag(spec: Mapping[str, Any], env: str, snapshot: Snapshot) -> Compiled:
    name, kind = str(spec["name"]), str(spec["kind"])
    compiled = Compiled(name, kind)
    override = snapshot.overrides.get(f"{name}|{env}") or {}
    to = str(override.get("to", ""))
    environments = spec.get("environments") or {}
    enabled = bool(environments.get(env, spec.get("default_state", False)))
    if to in ("on", "off"):
        enabled = to == "on"
    if not enabled:
        compiled.static = DISABLED
        return compiled
    if kind == "toggle":
        compiled.static = _ON
        return compiled
    if kind == "ticket":
        compiled.members = snapshot.members.get(f"{name}|{env}", frozenset())
        compiled.default = (False, "off", "DEFAULT")
        return compiled
    variants = spec["variants"]
    if to and to not in ("on", "off"):  # forced to one variant
        compiled.static = (variants[to], to, "STATIC")
        return compiled
    default = spec["default"]
    compiled.default = (variants[default], default, "DEFAULT")
    compiled.rules = [_Rule(rule, variants, name) for rule in spec.get("targeting") or ()]
    if not compiled.rules:
        compiled.static = (variants[default], default, "STATIC")
    return compiled
