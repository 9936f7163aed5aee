"""The flip action in Unleash: a rule's ``flip: {…, via: unleash}`` calls Unleash's admin
API (checked against a local HTTP receiver that records each request), retries what
failed, reports what was refused, never stops the flipper, and writes each flip and
restore as a change event on the real broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from shiftright_server.infra.settings import AlertingSettings, Settings
from shiftright_server.schemas.alerts import FlipSpec, Scope
from shiftright_server.sinks.flags.flipper import Flipper

from tests.integration.test_flags import _changes
from tests.integration.test_notify import Receiver
from tests.unit.flags.test_flips import transition

TOKEN = "*:*.unleash-admin-token"
FEATURE = "/api/admin/projects/checkout-team/features/new-checkout/environments/production"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _flipper(settings: Settings, receiver: Receiver) -> Flipper:
    unleash = AlertingSettings(
        unleash_url=receiver.url(""), unleash_token=TOKEN, unleash_project="checkout-team"
    )
    made = Flipper(settings.model_copy(update={"alerting": unleash}))
    spec = FlipSpec(flag="new-checkout", env="production", to="off", quiet=60, via="unleash")
    made.actions = {"checkout-errors": (spec, Scope(app="checkout", env="prod"))}
    return made


def test_an_alert_turns_the_feature_off_in_unleash_and_back_on_after_quiet(
    kafka_settings: Settings, receiver: Receiver
) -> None:
    flipper = _flipper(kafka_settings, receiver)
    receiver.plan[f"{FEATURE}/off"] = [503]  # Unleash restarting: retried
    assert flipper.act(transition(1)) == "flipped"
    calls = receiver.hits(f"{FEATURE}/off")
    assert [c["code"] for c in calls] == [503, 200]
    assert {c["authorization"] for c in calls} == {TOKEN}
    assert flipper.act(transition(1)) == "already"  # the same firing read again
    assert flipper.act(transition(2, "resolved")) == "kept"
    assert flipper.restore_due(datetime.now(UTC)) == 0  # quiet for 60 s first
    assert not receiver.hits(f"{FEATURE}/on")
    flipper.restore_due(datetime.now(UTC) + timedelta(seconds=61))
    assert [c["code"] for c in receiver.hits(f"{FEATURE}/on")] == [200]
    assert len(receiver.hits()) == 3
    events = _changes(kafka_settings, 2)
    assert [(e["name"], e["value"], e["actor"]) for e in events] == [
        ("new-checkout", "off", "alert:checkout-errors"),
        ("new-checkout", "on", "alert:checkout-errors"),
    ]
    assert events[0]["env"] == "production" and events[0]["app"] == "checkout"


def test_failed_and_refused_calls_are_reported_and_the_flipper_goes_on(
    kafka_settings: Settings, receiver: Receiver
) -> None:
    flipper = _flipper(kafka_settings, receiver)
    receiver.plan[f"{FEATURE}/off"] = [500, 500, 500, 404]
    assert flipper.act(transition(1)) == "failed"  # three attempts, no exception
    assert len(receiver.hits(f"{FEATURE}/off")) == 3
    assert flipper.act(transition(3)) == "failed"  # refused (404): not retried
    assert len(receiver.hits(f"{FEATURE}/off")) == 4
    later = datetime.now(UTC) + timedelta(seconds=31)
    flipper.restore_due(later)  # the first firing's flip, tried again: Unleash takes it
    assert [h["code"] for h in receiver.hits(f"{FEATURE}/off")][-1] == 200
    assert flipper.act(transition(1)) == "already"
    assert flipper.act(transition(5)) == "flipped"  # another firing
    receiver.server.shutdown()
    receiver.server.server_close()
    assert flipper.act(transition(7)) == "failed"  # nothing listening
