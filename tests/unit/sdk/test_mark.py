"""``mark deploy`` / ``mark flag``: one valid change event, and a truthful exit status."""

from __future__ import annotations

from typing import Any

import pytest
from shiftright import cli
from shiftright_server.schemas.events import ChangeEvent

from tests.unit.sdk.conftest import FakeTransport


def test_mark_deploy_sends_one_valid_change_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octo")
    fake = FakeTransport()
    assert cli.mark_deploy("checkout", "prod", "1.4.3", kafka="-", transport=lambda c: fake)
    [event] = fake.events()
    change = ChangeEvent.model_validate(event)
    assert (change.change_type, change.name, change.value, change.release, change.actor) == (
        "deploy",
        "1.4.3",
        "1.4.3",
        "1.4.3",
        "octo",
    )
    assert fake.messages[0].key == b"checkout|prod|deploy"


def test_mark_flag_records_the_previous_state() -> None:
    fake = FakeTransport()
    assert cli.mark_flag(
        "new-checkout", "off", "checkout", "prod", kafka="-", transport=lambda c: fake
    )
    change = ChangeEvent.model_validate(fake.events()[0])
    assert (change.change_type, change.name, change.value, change.previous_value) == (
        "flag",
        "new-checkout",
        "off",
        "on",
    )


def test_an_unacknowledged_mark_reports_failure(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTransport(fail_with="_MSG_TIMED_OUT")
    real_mark = cli.mark
    monkeypatch.setattr(cli, "mark", lambda *a, **k: real_mark(*a, **k, transport=lambda c: fake))
    code = cli.main(["mark", "flag", "f", "on", "--app", "a", "--env", "e", "--timeout", "1"])
    assert code == 1 and "did not acknowledge" in capsys.readouterr().err
