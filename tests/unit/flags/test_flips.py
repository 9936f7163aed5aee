"""Who may press the button: people, alerts, the hourly cap and the automatic restore."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from shiftright.flags.topic import Folder, file_key, flip_key
from shiftright_server.infra.settings import AlertingSettings, Settings
from shiftright_server.schemas.alerts import AlertTransition, FlipSpec, Scope
from shiftright_server.schemas.flag_file import load_flags
from shiftright_server.schemas.flags import Flip
from shiftright_server.sinks.flags.flipper import Flipper
from shiftright_server.sinks.flags.flips import (
    FlipAction,
    FlipRefused,
    alert_flip,
    alert_resolved,
    auto_restore,
    due_restores,
    person_flip,
    person_restore,
    state,
)

from tests.unit.flags.test_flag_file import GOOD

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
OFF = FlipAction(app="checkout", flag="new-checkout", env="prod", to="off", quiet=300)


class FakeTopic:
    """Writes flips into a folder, as the compacted topic would, and keeps the change events."""

    def __init__(self) -> None:
        self.folder = Folder()
        self.offset = 0
        self.changes: list[tuple[str, str, str, str]] = []  # flag, previous, now, actor
        doc = {"version": 1, "flags": [f.model_dump(mode="json") for f in load_flags(GOOD).flags]}
        self._write(file_key("checkout"), doc)

    def _write(self, key: bytes, doc: object) -> None:
        self.folder.fold(key, json.dumps(doc).encode(), self.offset)
        self.offset += 1

    def write_flip(self, flip: Flip, previous: str | None, now: str) -> None:
        self._write(flip_key(flip.app, flip.flag, flip.env), flip.model_dump(mode="json"))
        if previous is not None:
            self.changes.append((flip.flag, previous, now, flip.actor))


def _fire(topic: FakeTopic, firing: str, at: datetime) -> str:
    return alert_flip(topic, topic.folder, OFF, "checkout-errors", firing, "errors up", at)


def test_an_alert_flips_once_per_firing_even_when_read_again() -> None:
    topic = FakeTopic()
    assert _fire(topic, "fire-1", T0) == "flipped"
    assert _fire(topic, "fire-1", T0 + timedelta(seconds=5)) == "already"  # a restart
    assert state(topic.folder, "checkout", "new-checkout", "prod") == "off"
    assert topic.changes == [("new-checkout", "on", "off", "alert:checkout-errors")]


def test_a_persons_flip_wins_over_the_alert() -> None:
    topic = FakeTopic()
    _fire(topic, "fire-1", T0)
    person = Flip(app="checkout", flag="new-checkout", env="prod", to="on", actor="ana", at=T0)
    person_flip(topic, topic.folder, person)
    assert _fire(topic, "fire-2", T0 + timedelta(minutes=1)) == "person"
    alert_resolved(topic, topic.folder, OFF, "checkout-errors", T0 + timedelta(minutes=2))
    assert due_restores(topic.folder, T0 + timedelta(hours=1)) == []
    assert state(topic.folder, "checkout", "new-checkout", "prod") == "on"


def test_auto_restore_waits_for_the_quiet_period_after_resolve() -> None:
    topic = FakeTopic()
    _fire(topic, "fire-1", T0)
    assert due_restores(topic.folder, T0 + timedelta(hours=1)) == []  # still firing
    resolved = T0 + timedelta(minutes=3)
    alert_resolved(topic, topic.folder, OFF, "checkout-errors", resolved)
    assert due_restores(topic.folder, resolved + timedelta(seconds=299)) == []
    (due,) = due_restores(topic.folder, resolved + timedelta(seconds=300))
    auto_restore(topic, topic.folder, due, resolved + timedelta(seconds=300))
    assert state(topic.folder, "checkout", "new-checkout", "prod") == "on"
    assert topic.changes[-1] == ("new-checkout", "off", "on", "alert:checkout-errors")


def test_alert_flips_per_flag_and_hour_are_capped() -> None:
    topic = FakeTopic()
    outcomes = []
    for i in range(6):
        at = T0 + timedelta(minutes=5 * i)
        outcomes.append(_fire(topic, f"fire-{i}", at))
        alert_resolved(topic, topic.folder, OFF, "checkout-errors", at)
        for due in due_restores(topic.folder, at + timedelta(minutes=5)):
            auto_restore(topic, topic.folder, due, at + timedelta(minutes=5))
    assert outcomes == ["flipped"] * 4 + ["capped"] * 2
    assert _fire(topic, "fire-late", T0 + timedelta(hours=1, minutes=1)) == "flipped"


def test_people_flip_to_known_states_and_restore_only_a_flip() -> None:
    topic = FakeTopic()
    with pytest.raises(FlipRefused, match="no flag 'nope'"):
        person_flip(
            topic,
            topic.folder,
            Flip(app="checkout", flag="nope", env="prod", to="off", actor="ana", at=T0),
        )
    with pytest.raises(FlipRefused, match="cannot flip layout to 'huge'"):
        person_flip(
            topic,
            topic.folder,
            Flip(app="checkout", flag="layout", env="prod", to="huge", actor="ana", at=T0),
        )
    with pytest.raises(FlipRefused, match="not flipped"):
        person_restore(topic, topic.folder, "checkout", "layout", "prod", "ana", T0)
    person_flip(
        topic,
        topic.folder,
        Flip(app="checkout", flag="layout", env="prod", to="wide", actor="ana", at=T0),
    )
    assert person_restore(topic, topic.folder, "checkout", "layout", "prod", "bo", T0) == "on"
    assert topic.changes == [("layout", "on", "wide", "ana"), ("layout", "wide", "on", "bo")]


def test_yaml_on_and_off_are_flip_targets() -> None:
    flip = Flip.model_validate(
        {"app": "a", "flag": "f", "env": "prod", "to": False, "actor": "x", "at": T0}
    )
    assert flip.to == "off"


def test_a_rule_flip_names_its_target_and_tells_subscribers() -> None:
    from shiftright_server.schemas.rule_file import RuleFileError, load_rules

    rule = """rules:
  - name: checkout-errors
    kind: threshold
    scope: {app: checkout, env: prod, source: error}
    threshold: 10
    flip: {flag: new-checkout, to: off, quiet: 5m}
"""
    (loaded,) = load_rules(rule).rules
    assert loaded.flip is not None and loaded.flip.where(loaded.scope) == ("checkout", "prod")
    assert loaded.flip.describe(loaded.scope) == (
        "turns flag new-checkout off in prod (checkout); restored 300s after the alert resolves"
    )
    with pytest.raises(RuleFileError, match=r"2: rules\[0\] \(checkout-errors\): .*flip: name"):
        load_rules(rule.replace("env: prod", "env: '*'"))
    unleash = rule.replace("quiet: 5m", "via: unleash, env: production")
    (loaded,) = load_rules(unleash).rules
    assert loaded.flip is not None and loaded.flip.describe(loaded.scope).startswith(
        "turns flag new-checkout off in Unleash (production)"
    )
    with pytest.raises(RuleFileError, match="on or off, not to a variant"):
        load_rules(unleash.replace("to: off", "to: wide"))


def test_email_and_slack_say_what_the_alert_turned_off() -> None:
    from shiftright_server.sinks.notify.notifier import AlertView, Notification
    from shiftright_server.sinks.notify.payloads import render_email, slack_payload

    flip = "turns flag new-checkout off in prod (checkout); restored 300s after the alert resolves"
    alert = AlertView(
        "fp",
        "checkout-errors",
        {"alertname": "checkout-errors"},
        {"summary": "errors up", "flag_flip": flip},
        "firing",
        0,
        None,
        "k",
    )
    note = Notification("oncall", "email", "a@b.c", "g", {}, "firing", (alert,), "n", T0)
    assert f"errors up — {flip}" in render_email(note, "http://x").text
    assert f"errors up — {flip}" in json.dumps(slack_payload(note, "http://x"), ensure_ascii=False)


class FlipperTopic(FakeTopic):
    """The fake topic as the flipper sees it: ``written`` and a full ``read``."""

    written = -1

    def write_flip(self, flip: Flip, previous: str | None, now: str) -> None:
        super().write_flip(flip, previous, now)
        self.written = self.offset - 1

    def read(self) -> Folder:
        return self.folder


def _flipper(topic: FlipperTopic, settings: Settings | None = None, **flip: Any) -> Flipper:
    made = Flipper(settings or Settings(namespace="unit"))  # nothing connects before start()
    made.flags = topic  # type: ignore[assignment]  # the fake keeps FlagTopic's interface
    made.folder = topic.folder
    spec = FlipSpec(flag="new-checkout", to="off", quiet=300, **flip)
    made.actions = {"checkout-errors": (spec, Scope(app="checkout", env="prod"))}
    return made


def transition(seq: int = 2, state: Literal["firing", "resolved"] = "firing") -> AlertTransition:
    return AlertTransition(
        rule="checkout-errors",
        rule_kind="threshold",
        fingerprint="fp",
        labels={},
        previous="pending" if state == "firing" else "firing",
        state=state,
        ts=datetime.now(UTC),
        seq=seq,
        idempotency_key=f"checkout-errors|fp|{seq}|{state}",
    )


def test_a_flipper_restarted_mid_flip_reads_the_firing_again_and_flips_once() -> None:
    topic = FlipperTopic()
    firing = transition()
    first, successor = _flipper(topic), _flipper(topic)
    assert first.act(firing) == "flipped"  # killed before committing its offset...
    assert successor.act(firing) == "already"  # ...so the successor reads it again
    assert topic.changes == [("new-checkout", "on", "off", "alert:checkout-errors")]
    old = firing.model_copy(update={"ts": datetime.now(UTC) - timedelta(hours=1), "seq": 1})
    assert successor.act(old) == "stale"


def _flips_in_an_hour(flipper: Flipper) -> list[str]:
    """Fire, resolve and restore ten times within a few seconds."""
    outcomes = []
    for seq in range(10):
        outcomes.append(flipper.act(transition(2 * seq + 2)))
        flipper.act(transition(2 * seq + 3, "resolved"))
        flipper.restore_due(datetime.now(UTC) + timedelta(minutes=10))
    return outcomes


def test_the_hourly_cap_is_a_setting_and_a_rule_may_set_its_own() -> None:
    assert _flips_in_an_hour(_flipper(FlipperTopic())).count("flipped") == 4  # the default
    settings = Settings(namespace="unit", alerting=AlertingSettings(flips_per_hour=2))
    assert _flips_in_an_hour(_flipper(FlipperTopic(), settings)).count("flipped") == 2
    own = _flipper(FlipperTopic(), settings, max_per_hour=7)
    assert _flips_in_an_hour(own) == ["flipped"] * 7 + ["capped"] * 3
