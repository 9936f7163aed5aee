"""``/keys`` (admins): the gateway's ingest keys — the app and env each may send for, who
made it and when, its last use — a form that makes one (shown once, on the page that
made it) and a button that revokes one. The keys are those of ``shiftright gateway
keys`` (:class:`~shiftright_server.infra.access.ingest_keys.KeyStore`, one file under the
state directory); every change is written to the audit trail."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard.audit_trail import actor, record_change
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import page_context, render
from shiftright_server.infra.access.ingest_keys import KeyRefused, KeyStore, key_json, keys_path

router = APIRouter(dependencies=[Depends(check_permission)])
KEYS = route_action(Action.INGEST_KEYS)
_opening = threading.Lock()


def key_store(request: Request) -> KeyStore:
    """The app's key store, opened on first use (most dashboards never open this page)."""
    state = request.app.state
    with _opening:
        if getattr(state, "keys", None) is None:
            state.keys = KeyStore(keys_path(state.settings))
    return state.keys  # type: ignore[no-any-return]  # Starlette's app state is untyped


def _page(request: Request, status: int = 200, **shown: Any) -> HTMLResponse:
    values = {
        "keys": list(reversed(key_store(request).list())),  # newest first
        "form": {"app": "", "env": "", "label": ""},
        "problems": {},
        "secret": "",
        "problem": "",
    }
    return render(page_context(request), "keys.html", status, **(values | shown))


@router.get("/keys", response_class=HTMLResponse, openapi_extra=KEYS)
def keys_page(request: Request) -> HTMLResponse:
    """Ingest keys: scope, creator, creation, last use, state."""
    return _page(request)


@router.post("/keys", response_class=HTMLResponse, openapi_extra=KEYS)
def create_key(
    request: Request,
    app: Annotated[str, Form(max_length=200)] = "",
    env: Annotated[str, Form(max_length=200)] = "",
    label: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """A key for one app (and one env, or any), shown once."""
    form = {"app": app.strip(), "env": env.strip(), "label": label.strip()}
    try:
        token, key = key_store(request).create(
            form["app"], form["env"] or None, form["label"], actor(request)
        )
    except KeyRefused as exc:
        return _page(request, 400, form=form, problems={exc.field: str(exc)})
    record_change(request, "key.create", key.id, None, key_json(key))
    return _page(request, secret=token)


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse, openapi_extra=KEYS)
def revoke_key(request: Request, key_id: str) -> HTMLResponse:
    """Revoke a key: the gateway refuses it from its next request on."""
    store = key_store(request)
    key = store.get(key_id)
    if key is None or not store.revoke(key_id):
        return _page(request, 404, problem=f"no active ingest key {key_id}")
    record_change(request, "key.revoke", key_id, key_json(key), None)
    return _page(request)
