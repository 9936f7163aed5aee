"""What a person does with flags, whatever they use: the command line (``shiftright
flags``), the HTTP API (``/api/v1/flags``) and the dashboard's flag pages all call
:class:`FlagAdmin`, so a change is the same records and change events from each.

* :meth:`FlagAdmin.statuses` — every applied flag, its state per environment and the
  last flip (who, when, whether an alert holds it);
* :meth:`FlagAdmin.apply` — a new flag file (validated; the diff; nothing written on a
  dry run or when identical);
* :meth:`FlagAdmin.flip` / :meth:`FlagAdmin.restore` — the button (:mod:`.flips`).

Who may do it and the audit trail belong to each front end; the actor given here is
what the change events carry (an e-mail, ``token:<name>``, or an OS user on the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shiftright.flags.topic import Folder
from shiftright_server.infra.flags_config import Applied, FlagTopic
from shiftright_server.schemas.flag_file import diff_flags, load_flags
from shiftright_server.schemas.flags import EnvState, FlagStatus, Flip
from shiftright_server.schemas.rule_file import Change
from shiftright_server.sinks.flags.flips import file_state, in_force, person_flip, person_restore


@dataclass(frozen=True)
class Applying:
    """What applying a flag file did (or, on a dry run, would do)."""

    before: Applied
    changes: list[Change]
    applied: Applied | None  # None: nothing written (dry run or identical)


class FlagAdmin:
    """The flag topic as people change it (blocking calls: Kafka round trips)."""

    def __init__(self, topic: FlagTopic) -> None:
        self.topic = topic

    def read(self) -> Folder:
        return self.topic.read()

    def statuses(self, app: str = "", folder: Folder | None = None) -> list[FlagStatus]:
        folder = folder or self.read()
        apps = [app] if app else sorted(folder.apps)
        return [s for name in apps for s in statuses_of(folder, name)]

    def status(self, app: str, flag: str) -> FlagStatus | None:
        return next((s for s in self.statuses(app) if s.name == flag), None)

    def applied(self, app: str) -> Applied:
        return self.topic.applied(app)

    def preview(self, text: str, source: str) -> tuple[Applied, list[Change]]:
        """Validate (raises ``FlagFileError``) and diff against the applied version."""
        new = load_flags(text, source)
        current = self.topic.applied(new.app)
        return current, diff_flags(current.flags, new)

    def apply(self, text: str, actor: str, source: str, dry_run: bool = False) -> Applying:
        current, changes = self.preview(text, source)
        if dry_run or (current.version and text == current.text):
            return Applying(current, changes, None)
        return Applying(current, changes, self.topic.apply(text, actor, source))

    def flip(self, app: str, flag: str, env: str, to: str, actor: str, reason: str = "") -> Flip:
        """Force ``flag`` to ``to`` in ``env`` (``FlipRefused`` for an unknown flag or
        variant); an alert never undoes it."""
        flip = Flip(app=app, flag=flag, env=env, to=to, actor=actor, reason=reason, at=_now())
        person_flip(self.topic, self.read(), flip)
        return flip

    def restore(self, app: str, flag: str, env: str, actor: str) -> str:
        """End the flip in force; the file's state (``on``/``off``) that holds again."""
        return person_restore(self.topic, self.read(), app, flag, env, actor, _now())


def statuses_of(folder: Folder, app: str) -> list[FlagStatus]:
    """Every flag of ``app``'s applied file, with its environments (those the file names
    and those with a flip record)."""
    flips = folder.flips(app)
    out = []
    for spec in folder.snapshot(app).flags:
        name = str(spec.get("name", ""))
        named = set((spec.get("environments") or {}).keys())
        named |= {where.split("|", 1)[1] for where in flips if where.split("|", 1)[0] == name}
        envs = [_env_state(folder, app, name, env) for env in sorted(named)]
        out.append(
            FlagStatus(
                app=app,
                name=name,
                kind=str(spec.get("kind", "")),
                description=str(spec.get("description", "")),
                variants=_variants(spec),
                environments=envs,
            )
        )
    return out


def _variants(spec: dict[str, Any]) -> list[str]:
    return list(spec.get("variants") or {}) or ["on", "off"]


def _env_state(folder: Folder, app: str, flag: str, env: str) -> EnvState:
    base = file_state(folder, app, flag, env)
    flip = in_force(folder, app, flag, env)
    if flip is None:
        return EnvState(env=env, state=base, file_state=base)
    return EnvState(
        env=env,
        state=flip.to or base,
        file_state=base,
        flipped_to=flip.to,
        actor=flip.actor,
        at=flip.at,
        reason=flip.reason,
        held_by_alert=bool(flip.to) and flip.by_alert,
    )


def _now() -> datetime:
    return datetime.now(UTC)
