"""Who may press the button, and what a press writes (the policy; I/O through FlagTopic).

* A person's flip always goes through and is never undone by an alert: while it is in
  force, an alert's flip and an alert's restore of that flag leave it alone.
* An alert's flip is idempotent: its ``flip_id`` is the firing's idempotency key, so a
  flipper that restarts and reads the same firing again finds its flip already written.
* At most ``max_per_hour`` alert flips per flag and environment in an hour (the rule's
  ``max_per_hour``, else the notifier's ``flips_per_hour``, 4 by default; the record
  carries the times of the last hour's alert flips, restores included).
* An alert's ``restore: auto`` waits for the alert to resolve and then ``quiet`` seconds
  (the resolve time is written into the flip, so a restart keeps the schedule);
  ``restore: manual`` waits for a person (``shiftright flags restore``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from shiftright.flags.topic import Folder
from shiftright_server.schemas.flags import Flip

MAX_PER_HOUR = 4
Outcome = Literal["flipped", "already", "person", "capped", "unknown_flag", "restored", "kept"]


class FlipRefused(ValueError):
    """A flip or restore that makes no sense (unknown flag or variant, nothing to restore)."""


class FlipWriter(Protocol):
    def write_flip(self, flip: Flip, previous: str | None, now: str) -> None: ...


@dataclass(frozen=True)
class FlipAction:
    """``flip: {flag: new-checkout, env: prod, to: off, restore: auto, quiet: 5m}`` on a rule."""

    app: str
    flag: str
    env: str
    to: str
    restore: Literal["auto", "manual"] = "auto"
    quiet: float = 300.0
    max_per_hour: int = MAX_PER_HOUR


def in_force(folder: Folder, app: str, flag: str, env: str) -> Flip | None:
    """The flip record of a flag in an environment (restored ones too), if any."""
    doc = folder.flips(app).get(f"{flag}|{env}")
    return Flip.model_validate(doc) if doc else None


def state(folder: Folder, app: str, flag: str, env: str) -> str:
    """What the flag is in ``env`` now: the flip's target, else the file's on/off."""
    flip = in_force(folder, app, flag, env)
    if flip is not None and flip.to:
        return flip.to
    return file_state(folder, app, flag, env)


def file_state(folder: Folder, app: str, flag: str, env: str) -> str:
    spec = _spec(folder, app, flag)
    if spec is None:
        return "off"
    environments: Mapping[str, Any] = spec.get("environments") or {}
    return "on" if environments.get(env, spec.get("default_state", False)) else "off"


def _spec(folder: Folder, app: str, flag: str) -> dict[str, Any] | None:
    return next((f for f in folder.snapshot(app).flags if f.get("name") == flag), None)


def person_flip(topic: FlipWriter, folder: Folder, flip: Flip) -> None:
    spec = _spec(folder, flip.app, flip.flag)
    if spec is None:
        raise FlipRefused(f"no flag {flip.flag!r} applied for app {flip.app!r}")
    allowed = {"on", "off", *(spec.get("variants") or {})}
    if flip.to not in allowed:
        raise FlipRefused(f"cannot flip {flip.flag} to {flip.to!r}: {', '.join(sorted(allowed))}")
    before = in_force(folder, flip.app, flip.flag, flip.env)
    recent = before.recent if before is not None else []
    previous = state(folder, flip.app, flip.flag, flip.env)
    topic.write_flip(flip.model_copy(update={"recent": recent}), previous, flip.to)


def person_restore(
    topic: FlipWriter, folder: Folder, app: str, flag: str, env: str, actor: str, at: datetime
) -> str:
    """End the flip in force; returns the file's state that holds again."""
    before = in_force(folder, app, flag, env)
    if before is None or not before.to:
        raise FlipRefused(f"{flag} is not flipped in {env}")
    back = file_state(folder, app, flag, env)
    restored = before.model_copy(
        update={"to": "", "actor": actor, "reason": "", "at": at, "resolved_at": None}
    )
    topic.write_flip(restored, before.to, back)
    return back


def alert_flip(
    topic: FlipWriter,
    folder: Folder,
    action: FlipAction,
    rule: str,
    flip_id: str,
    reason: str,
    at: datetime,
) -> Outcome:
    """The rule fired: flip the flag unless a person's flip is in force, this firing
    already flipped it, or the hourly cap is reached."""
    if _spec(folder, action.app, action.flag) is None:
        return "unknown_flag"
    before = in_force(folder, action.app, action.flag, action.env)
    if before is not None and before.flip_id == flip_id:
        return "already"
    if before is not None and before.to and not before.by_alert:
        return "person"
    now_s = at.timestamp()
    recent = [t for t in (before.recent if before else []) if now_s - t < 3600]
    if len(recent) >= action.max_per_hour:
        return "capped"
    previous = state(folder, action.app, action.flag, action.env)
    flip = Flip(
        app=action.app,
        flag=action.flag,
        env=action.env,
        to=action.to,
        actor=f"alert:{rule}",
        reason=reason,
        at=at,
        flip_id=flip_id,
        restore=action.restore,
        quiet=action.quiet,
        recent=[*recent, now_s],
    )
    topic.write_flip(flip, previous if previous != action.to else None, action.to)
    return "flipped"


def alert_resolved(
    topic: FlipWriter, folder: Folder, action: FlipAction, rule: str, at: datetime
) -> Outcome:
    """The rule resolved: arm the automatic restore (written into the flip) if the flip in
    force is this rule's."""
    before = in_force(folder, action.app, action.flag, action.env)
    if before is None or not before.to or before.actor != f"alert:{rule}":
        return "kept"
    if before.restore != "auto" or before.resolved_at is not None:
        return "kept"
    topic.write_flip(before.model_copy(update={"resolved_at": at}), None, before.to)
    return "kept"


def due_restores(folder: Folder, now: datetime) -> list[Flip]:
    """Alert flips whose alert resolved more than their quiet period ago."""
    out = []
    for app_state in folder.apps.values():
        for doc in app_state.flips.values():
            flip = Flip.model_validate(doc)
            resolved = flip.resolved_at
            armed = flip.to and flip.by_alert and flip.restore == "auto"
            if armed and resolved is not None and (now - resolved).total_seconds() >= flip.quiet:
                out.append(flip)
    return out


def auto_restore(topic: FlipWriter, folder: Folder, flip: Flip, at: datetime) -> Outcome:
    back = file_state(folder, flip.app, flip.flag, flip.env)
    restored = flip.model_copy(
        update={"to": "", "reason": f"{flip.actor} quiet for {flip.quiet:g}s", "at": at}
    )
    topic.write_flip(restored, flip.to, back)
    return "restored"
