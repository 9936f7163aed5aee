"""``shiftright users``, ``tokens`` and ``links``: accounts with one-time sign-in links,
personal API tokens and share links in the identity store, each change in the audit
outbox (the warehouse is away in unit tests, so entries wait there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shiftright_server.infra.access.identity import Identity, open_identity
from shiftright_server.infra.cli.root import app
from shiftright_server.infra.cli.users import first_admin
from shiftright_server.infra.settings import Settings
from typer.testing import CliRunner

from tests.unit.test_alerts_cli import RULES, FakeStore, store

__all__ = ["store"]  # the alerting CLI's store fixture


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SHIFTRIGHT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "220")
    return Settings(state_dir=tmp_path / "state")


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _store(settings: Settings) -> Identity:
    return open_identity(settings)


def _audited(settings: Settings) -> list[tuple[str, str]]:
    rows = _store(settings).db.all("SELECT entry FROM audit_outbox ORDER BY seq")
    return [(json.loads(e)["action"], json.loads(e)["target"]) for (e,) in rows]


def test_users_add_prints_a_link_that_signs_in_once(settings: Settings) -> None:
    added = run("users", "add", "Ann@Example.com", "--role", "editor")
    assert added.exit_code == 0, added.output
    url = added.stdout.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:18080/signin/link/")
    token = url.rsplit("/", 1)[1]
    store = _store(settings)
    user = store.accounts.link_user(token)
    assert user is not None and (user.email, user.role) == ("ann@example.com", "editor")
    assert token not in store.db.path.read_bytes().decode("latin-1")  # only its digest
    assert run("users", "add", "ann@example.com").exit_code == 1  # already there
    assert run("users", "add", "bo@example.com", "--role", "owner").exit_code == 1


def test_users_role_list_remove_and_the_last_admin_stays(settings: Settings) -> None:
    run("users", "add", "ann@example.com", "--role", "admin")
    run("users", "add", "bo@example.com")
    assert run("users", "role", "bo@example.com", "editor").exit_code == 0
    listed = run("users", "list").output
    assert "bo@example.com" in listed and "editor" in listed and "not yet" in listed
    last = run("users", "role", "ann@example.com", "viewer")
    assert last.exit_code == 1 and "last admin" in last.output
    assert run("users", "remove", "bo@example.com").exit_code == 0
    assert [u.email for u in _store(settings).accounts.list()] == ["ann@example.com"]
    assert _audited(settings) == [
        ("user.add", "ann@example.com"),
        ("user.add", "bo@example.com"),
        ("user.role", "bo@example.com"),
        ("user.remove", "bo@example.com"),
    ]


def test_personal_tokens_are_shown_once_scoped_and_revocable(settings: Settings) -> None:
    run("users", "add", "ann@example.com", "--role", "editor")
    made = run("tokens", "create", "--user", "ann@example.com", "--scope", "write")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    store = _store(settings)
    found = store.tokens.check(token).token
    assert found is not None and (found.owner, found.role, found.scope) == (
        "ann@example.com",
        "editor",
        "write",
    )
    run("users", "role", "ann@example.com", "viewer")  # a write token never outranks its owner
    assert store.tokens.check(token).token.role == "viewer"  # type: ignore[union-attr]  # checked above
    assert run("tokens", "revoke", found.id).exit_code == 0
    assert store.tokens.check(token).problem == "revoked"


def test_share_links_are_made_listed_and_revoked(settings: Settings) -> None:
    made = run(
        "links", "create", "--app", "checkout", "--env", "prod", "--page", "errors", "--days", "2"
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().rsplit("/", 1)[1]
    store = _store(settings)
    link = store.links.check(token, view=True).link
    assert link is not None and link.pages == ("errors",) and link.views == 0
    listed = run("links", "list").output
    assert link.id in listed and "checkout × prod" in listed
    assert run("links", "revoke", link.id).exit_code == 0
    assert store.links.check(token, view=True).problem == "revoked"
    bad = run("links", "create", "--app", "x", "--env", "prod", "--page", "sql")
    assert bad.exit_code == 1 and "not one of" in bad.output


def test_the_first_up_creates_one_admin_and_prints_its_link_once(settings: Settings) -> None:
    first = first_admin(settings)
    assert first.startswith("admin@localhost: http://127.0.0.1:18080/signin/link/")
    assert first_admin(settings) == ""
    assert [(u.email, u.role) for u in _store(settings).accounts.list()] == [
        ("admin@localhost", "admin")
    ]


def test_rules_and_silences_changed_from_the_cli_are_audited(
    store: FakeStore, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert run("rules", "apply", str(rules), "--yes", "--author", "ann").exit_code == 0
    made = run("silence", "add", "--match", "app=checkout", "--for", "1h")
    assert made.exit_code == 0, made.output
    [silence_id] = store.config.silences
    assert run("silence", "delete", silence_id).exit_code == 0
    settings = Settings(state_dir=tmp_path / "state")
    audited = _audited(settings)
    assert audited == [
        ("rules.apply", str(rules)),
        ("silence.add", silence_id),
        ("silence.expire", silence_id),
    ]
    rows = _store(settings).db.all("SELECT entry FROM audit_outbox ORDER BY seq")
    first = json.loads(rows[0][0])
    assert first["via"] == "cli" and first["before"] == {"version": 0}
    assert first["after"]["version"] == 1 and first["after"]["changes"]
