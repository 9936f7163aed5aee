"""Ingest keys: stored hashed, bound to an app, revocable from the CLI while the gateway runs."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from shiftright_server.infra.access.ingest_keys import KeyStore, hash_key

from tests.unit.gateway.fakes import Harness


def test_only_a_hash_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    token, key = store.create("checkout", "prod", "ci")
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.startswith(f"sr_{key.id}_") and len(token) > 50
    assert token.encode() not in stored and token.split("_", 2)[2].encode() not in stored
    assert hash_key(token).encode() in stored


def test_check_tells_unknown_malformed_and_revoked_apart(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    token, key = store.create("checkout")
    assert store.check(token).key == key
    assert store.check("nonsense").problem == "malformed"
    assert store.check(token[:-1] + ("A" if token[-1] != "A" else "B")).problem == "unknown"
    assert store.revoke(key.id) is True
    assert store.revoke(key.id) is False  # already revoked
    assert store.check(token).problem == "revoked"
    [listed] = store.list()
    assert listed.revoked and listed.app == "checkout" and listed.env is None


def test_revocation_by_another_process_applies_to_the_next_request(
    client: TestClient, harness: Harness, token: str, auth: dict[str, str]
) -> None:
    event = {"kind": "usage", "name": "a"}
    assert client.post("/v1/events", json=event, headers=auth).status_code == 200
    other = KeyStore(harness.keys.path)  # the CLI's own connection to the same file
    checked = harness.keys.check(token).key
    assert checked is not None
    assert other.revoke(checked.id)
    response = client.post("/v1/events", json=event, headers=auth)
    assert response.status_code == 401 and response.json()["error"] == "key_revoked"
    assert response.headers["www-authenticate"] == "Bearer"


def test_requests_without_a_valid_key_are_401(client: TestClient, harness: Harness) -> None:
    event = {"kind": "usage", "name": "a", "app": "checkout", "env": "prod"}
    cases = {
        "key_missing": {},
        "key_malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
        "key_unknown": {"Authorization": "Bearer sr_000000000000_nope"},
    }
    for reason, headers in cases.items():
        response = client.post("/v1/events", json=event, headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, reason)
    assert harness.producer.produced == []
