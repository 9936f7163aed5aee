"""The one permission check every dashboard route and action passes.

Each route names what it does (:class:`Action`) when it is registered (``route_action``);
:func:`check_permission` is a dependency of the router, so no route can skip it, and a
route that names no action is refused. Who may do what is a :class:`Policy`; the
dashboard ships :class:`AllowAll` until accounts and roles exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fastapi import HTTPException, Request


class Action(StrEnum):
    """What a request does, as a policy sees it."""

    VIEW = "view"  # read pages and panels
    DECIDE_ERRORS = "errors.decide"  # resolve / ignore / unresolve an error group
    RUN_SQL = "sql.run"  # read-only SQL at the warehouse
    RULES_EDIT = "rules.edit"  # create, edit and backtest alert rules
    SILENCES_EDIT = "silences.edit"  # create and expire silences


@dataclass(frozen=True)
class Check:
    """One question to the policy: may this request do this action on this resource?"""

    action: Action
    route: str
    resource: dict[str, str]


class Policy(Protocol):
    def allows(self, request: Request, check: Check) -> bool: ...


class AllowAll:
    """Everyone may do everything (no accounts yet)."""

    def allows(self, request: Request, check: Check) -> bool:
        return True


ACTION_KEY = "x-shiftright-action"  # an OpenAPI extension: the action shows in the API docs


def route_action(action: Action) -> dict[str, object]:
    """``openapi_extra`` that records a route's action where the check finds it."""
    return {ACTION_KEY: action.value}


def check_permission(request: Request) -> None:
    """Ask the app's policy about this request; 403 when refused or undeclared."""
    route = request.scope.get("route")
    declared = (getattr(route, "openapi_extra", None) or {}).get(ACTION_KEY)
    path = getattr(route, "path", request.url.path)
    if declared is None:
        raise HTTPException(403, f"{path} declares no permission, so it is refused")
    check = Check(Action(declared), path, dict(request.path_params))
    policy: Policy = request.app.state.policy
    if not policy.allows(request, check):
        raise HTTPException(403, f"not allowed: {check.action.value} on {path}")
