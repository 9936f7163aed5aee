"""The one permission check every dashboard route and action passes.

Each route names what it does (:class:`Action`) when it is registered (``route_action``);
:func:`check_permission` is a dependency of every router, so no route can skip it, and a
route that names no action is refused. Who may do what is a :class:`Policy`: the
dashboard's is :class:`~.policy.RolePolicy`, one table of actions and the least role
each needs (``dashboard/policy.py``). The same check refuses an unsafe request without
its CSRF token (:mod:`.csrf`).

A new route declares one of these actions; a new kind of action is added here and given
its row in the policy table (the tests fail for an action the table does not cover).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute


class Action(StrEnum):
    """What a request does, as a policy sees it."""

    PUBLIC = "public"  # sign-in, sign-out, opening a share link: anyone
    UNSUBSCRIBE = "unsubscribe"  # a signed one-click unsubscribe link: anyone, no CSRF
    VIEW = "view"  # read pages and panels no share link opens (alerts, the API schema)
    VIEW_OVERVIEW = "overview.view"  # the overview (a share link may open it)
    VIEW_USAGE = "usage.view"  # usage (a share link may open it)
    VIEW_ERRORS = "errors.view"  # error groups (a share link may open them)
    VIEW_HEALTH = "health.view"  # host health (a share link may open it)
    RUN_SQL = "sql.run"  # read-only SQL at the warehouse
    OWN_SUBSCRIPTIONS = "subscriptions.own"  # one's own alert subscriptions
    OWN_TOKENS = "tokens.own"  # one's own personal API tokens
    DECIDE_ERRORS = "errors.decide"  # resolve / ignore / unresolve an error group
    RULES_EDIT = "rules.edit"  # create, edit and backtest alert rules
    SILENCES_EDIT = "silences.edit"  # create and expire silences
    EDIT_FLAGS = "flags.edit"  # change feature flags
    SHARE_LINKS = "links.manage"  # create, list and revoke read-only share links
    MANAGE_USERS = "users.manage"  # accounts and roles
    MANAGE_TOKENS = "tokens.manage"  # everyone's API tokens
    INGEST_KEYS = "keys.manage"  # the gateway's ingest keys
    AUDIT = "audit.view"  # the audit trail


@dataclass(frozen=True)
class Check:
    """One question to the policy: may this request do this action on this resource?"""

    action: Action
    route: str
    resource: dict[str, str]


class Policy(Protocol):
    def allows(self, request: Request, check: Check) -> bool: ...


ACTION_KEY = "x-shiftright-action"  # an OpenAPI extension: the action shows in the API docs


def route_action(action: Action) -> dict[str, object]:
    """``openapi_extra`` that records a route's action where the check finds it."""
    return {ACTION_KEY: action.value}


def declared_action(route: object) -> Action | None:
    declared = (getattr(route, "openapi_extra", None) or {}).get(ACTION_KEY)
    return None if declared is None else Action(declared)


async def check_permission(request: Request) -> None:
    """Ask the app's policy about this request; refuse when it says no (anonymous
    visitors are sent to sign in), when the route is undeclared, or without CSRF."""
    from shiftright_server.dashboard.csrf import verify_csrf
    from shiftright_server.dashboard.visitor import refuse

    route = request.scope.get("route")
    action = declared_action(route)
    path = getattr(route, "path", request.url.path)
    if action is None:
        raise HTTPException(403, f"{path} declares no permission, so it is refused")
    check = Check(action, path, dict(request.path_params))
    policy: Policy = request.app.state.policy
    if not policy.allows(request, check):
        refuse(request, check)
    await verify_csrf(request)


def route_table(routes: list[Any], prefix: str = "") -> list[tuple[str, str, Any]]:
    """(method, path, route) of every API route, through included routers: what the
    policy table must cover (the tests walk it)."""
    found: list[tuple[str, str, Any]] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            found += route_table(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIRoute):
            found += [(m, prefix + route.path, route) for m in sorted(route.methods or ())]
    return found
