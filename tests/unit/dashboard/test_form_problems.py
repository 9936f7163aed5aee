"""Bad input on the access forms (people, API tokens, share links, subscriptions): the
problem is named next to its field, what was typed comes back, and nothing is saved —
no account, token, link or subscription, and no audit entry."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import FakeCommands, FakeReader, make_app

#: path | what is posted | the field named | what it says | what was typed that comes back
CASES = """
/users | email=not-an-address&role=editor | email | is not an e-mail address | value="not-an-address"
/users | email=admin@example.com&role=editor | email | already has an account | value="admin@example.com"
/users | email=zoe@example.com&role=owner | role | role &#39;owner&#39; is not one of | value="zoe@example.com"
/tokens | scope=root&label=ci job | scope | scope &#39;root&#39; is not one of | value="ci job"
/links | envs=prod&pages=overview&label=desk | apps | a link needs at least one app | value="desk"
/links | apps=checkout&envs=prod&pages=errors&days=soon | days | &#39;soon&#39; is not a number | value="checkout" checked
/links | apps=checkout&envs=prod&pages=errors&days=400 | days | at most 366 days | value="checkout" checked
/links | apps=checkout&envs=prod&pages=sql | pages | page &#39;sql&#39; is not one of | value="checkout" checked
/subscriptions | channel=slack&to=http://hooks.example&app=checkout | to | needs an https:// URL | value="checkout"
/subscriptions | channel=email&severity=dire&app=checkout | severity | severity is one of | value="checkout"
"""


def _cases() -> list[tuple[str, dict[str, str], str, str, str]]:
    rows = [[cell.strip() for cell in line.split(" | ")] for line in CASES.strip().splitlines()]
    return [
        (path, dict(parse_qsl(sent)), field, says, kept) for path, sent, field, says, kept in rows
    ]


@pytest.fixture
def admin(reader: FakeReader, identity: Identity, audit: MemoryAudit) -> TestClient:
    client = TestClient(make_app(reader, FakeCommands(), identity, audit))
    sign_in_as(client, identity, "admin")
    return client


def _saved(identity: Identity) -> Callable[[], tuple[int, int, int, int]]:
    return lambda: (
        len(identity.accounts.list()),
        len(identity.tokens.list()),
        len(identity.links.list()),
        len(identity.subscriptions.list()),
    )


@pytest.mark.parametrize(("path", "sent", "field", "says", "kept"), _cases())
def test_a_problem_is_named_by_its_field_and_nothing_is_saved(
    admin: TestClient,
    identity: Identity,
    audit: MemoryAudit,
    reader: FakeReader,
    path: str,
    sent: dict[str, str],
    field: str,
    says: str,
    kept: str,
) -> None:
    saved = _saved(identity)
    before = saved()
    page = admin.post(path, data=sent)
    assert page.status_code == 400
    found = re.search(rf'id="p-{field}" role="alert">([^<]*)<', page.text)
    assert found and says in found[1], page.text
    assert kept in page.text  # what was typed comes back
    assert saved() == before and audit.entries == []
