"""A session for a test client, as if the person had signed in: the signed session cookie
and the CSRF header every unsafe request needs."""

from __future__ import annotations

from fastapi.testclient import TestClient
from shiftright_server.infra.access.identity import Identity


def sign_in_as(client: TestClient, identity: Identity, role: str, email: str = "") -> None:
    """A session for a new account with ``role``: its cookie and CSRF header on ``client``."""
    user, _ = identity.accounts.add(email or f"{role}@example.com", role)
    session = identity.sessions.start(user, "testclient")
    client.cookies.set("sr_session", identity.sign(session.id, "session"))
    client.headers["X-CSRF-Token"] = identity.sign(session.id, "csrf").rpartition(".")[2]
