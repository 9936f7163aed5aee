"""Who and what an event is about: user, customer, session and request, via contextvars.

A scope is pushed per request (by the middleware) or by ``with shiftright.scope(...)``;
``set_user`` & co. change the innermost pushed scope in place, so a handler running in a
thread pool (with a copied context) still tells the middleware who the user was. Outside
any pushed scope they set a fresh scope for the current context only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any


class Scope:
    __slots__ = ("user_id", "customer_id", "session_id", "route", "attributes", "pushed", "flags")

    def __init__(
        self,
        user_id: str = "",
        customer_id: str = "",
        session_id: str = "",
        route: str = "",
        attributes: dict[str, str] | None = None,
        pushed: bool = False,
    ) -> None:
        self.user_id = user_id
        self.customer_id = customer_id
        self.session_id = session_id
        self.route = route
        self.attributes = attributes if attributes is not None else {}
        self.pushed = pushed
        self.flags: dict[str, str] = {}  # flag -> variant evaluated in this scope

    def child(self) -> Scope:
        child = Scope(
            self.user_id,
            self.customer_id,
            self.session_id,
            self.route,
            dict(self.attributes),
            pushed=True,
        )
        if self.flags:
            child.flags = dict(self.flags)
        return child


EMPTY = Scope()
current: ContextVar[Scope] = ContextVar("shiftright_scope", default=EMPTY)


def writable() -> Scope:
    """The scope ``set_*`` change: the innermost pushed one, or a fresh one for this context."""
    return _writable()


def _writable() -> Scope:
    scope = current.get()
    if scope.pushed:
        return scope
    fresh = scope.child()
    fresh.pushed = False
    current.set(fresh)
    return fresh


def set_user(user_id: Any, customer_id: Any = None) -> None:
    """The user (``enduser.id``) and optionally customer/tenant of what follows."""
    scope = _writable()
    scope.user_id = "" if user_id is None else str(user_id)
    if customer_id is not None:
        scope.customer_id = str(customer_id)


def set_customer(customer_id: Any) -> None:
    _writable().customer_id = "" if customer_id is None else str(customer_id)


def set_session(session_id: Any) -> None:
    _writable().session_id = "" if session_id is None else str(session_id)


def set_tag(key: str, value: Any) -> None:
    """An attribute added to every event of the current scope."""
    _writable().attributes[str(key)] = str(value)


@contextmanager
def scope(**fields: Any) -> Iterator[Scope]:
    """A child scope for a block: ``with shiftright.scope(user_id=..., job="nightly"):``."""
    pushed = current.get().child()
    for name in ("user_id", "customer_id", "session_id", "route"):
        if name in fields:
            setattr(pushed, name, str(fields.pop(name)))
    pushed.attributes.update({k: str(v) for k, v in fields.items()})
    token = current.set(pushed)
    try:
        yield pushed
    finally:
        current.reset(token)
