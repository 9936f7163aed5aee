"""Who may do what: one table of every :class:`~.permissions.Action` and the least role
it needs, and the pages a read-only share link can open (:class:`RolePolicy`).

=====================  ==========  ===========================================
action                 least role  share link
=====================  ==========  ===========================================
public, unsubscribe    anyone      yes (sign-in, sign-out, opening a link,
                                   a signed one-click unsubscribe)
overview/usage/        viewer      when the link's pages include it, for the
errors/health.view                 link's apps × envs only
view, sql.run          viewer      no
subscriptions.own,     viewer      no
tokens.own
errors.decide,         editor      no
rules.edit,
silences.edit,
flags.edit,
links.manage
users.manage,          admin       no
tokens.manage,
keys.manage,
audit.view
=====================  ==========  ===========================================
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from shiftright_server.dashboard.permissions import Action, Check
from shiftright_server.dashboard.visitor import GoTo, Visitor, visitor_of
from shiftright_server.infra.access.accounts import RANK
from shiftright_server.infra.access.links import ShareLink

#: The least role each action needs (None: anyone, signed in or not).
LEAST_ROLE: dict[Action, str | None] = {
    Action.PUBLIC: None,
    Action.UNSUBSCRIBE: None,
    Action.VIEW: "viewer",
    Action.VIEW_OVERVIEW: "viewer",
    Action.VIEW_USAGE: "viewer",
    Action.VIEW_ERRORS: "viewer",
    Action.VIEW_HEALTH: "viewer",
    Action.RUN_SQL: "viewer",
    Action.OWN_SUBSCRIPTIONS: "viewer",
    Action.OWN_TOKENS: "viewer",
    Action.DECIDE_ERRORS: "editor",
    Action.RULES_EDIT: "editor",
    Action.SILENCES_EDIT: "editor",
    Action.EDIT_FLAGS: "editor",
    Action.SHARE_LINKS: "editor",
    Action.MANAGE_USERS: "admin",
    Action.MANAGE_TOKENS: "admin",
    Action.INGEST_KEYS: "admin",
    Action.AUDIT: "admin",
}

#: The actions a share link may do, by the page its scope names.
SHARED_PAGES: dict[Action, str] = {
    Action.VIEW_OVERVIEW: "overview",
    Action.VIEW_USAGE: "usage",
    Action.VIEW_ERRORS: "errors",
    Action.VIEW_HEALTH: "health",
}


def permits(visitor: Visitor, action: Action) -> bool:
    """Whether the visitor may do the action somewhere (what a page offers them)."""
    least = LEAST_ROLE[action]
    if least is None:
        return True
    if visitor.link is not None:
        return SHARED_PAGES.get(action) in visitor.link.pages
    return bool(visitor.role) and RANK[visitor.role] >= RANK[least]


class RolePolicy:
    """The table above, and a share link's apps × envs."""

    def allows(self, request: Request, check: Check) -> bool:
        visitor = visitor_of(request)
        if not permits(visitor, check.action):
            return False
        if visitor.link is not None and LEAST_ROLE[check.action] is not None:
            return in_scope(request, visitor.link)
        return True


def in_scope(request: Request, link: ShareLink) -> bool:
    """The request names only apps and envs of the link (missing ones are filled in)."""
    q = request.query_params
    app, env, compare = q.get("app", ""), q.get("env", ""), q.get("compare", "")
    if not app or not env:
        if request.method != "GET":
            return False
        filled = {**dict(q), "app": app or link.apps[0], "env": env or link.envs[0]}
        raise GoTo(f"{request.url.path}?{urlencode(filled)}")
    return app in link.apps and env in link.envs and (not compare or compare in link.envs)
