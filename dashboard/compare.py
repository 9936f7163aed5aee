"""Compare mode (``compare=ENV``) on the usage, health and errors pages: the rows or
host groups of ``ENV`` ride along with the same app's rows of the other envs, and their
charts draw ``ENV``'s series dashed next to their own (as the overview does)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from shiftright_server.dashboard.render import PageContext
from shiftright_server.dashboard.scopes import Scope, Scopes

T = TypeVar("T")


def checked(ctx: PageContext, compare: str) -> str:
    """``compare`` once the app has that env (UnknownScope: a 404 naming the envs)."""
    compare = compare.strip()
    if compare and not ctx.down:
        scopes: Scopes = ctx.request.app.state.scopes
        scopes.check(ctx.scope.app, compare)
    return compare


def wide(ctx: PageContext, compare: str) -> Scope:
    """The scope to read: every env of the app when comparing (then narrowed by
    :func:`kept`), else the page's."""
    return Scope(ctx.scope.app, "") if compare else ctx.scope


def kept(ctx: PageContext, compare: str, env: str) -> bool:
    return env == compare or not ctx.scope.env or env == ctx.scope.env


def pair(
    items: list[T],
    compare: str,
    env_of: Callable[[T], str],
    key_of: Callable[[T], Hashable],
    chart_of: Callable[[T], dict[str, Any]],
    names: tuple[str, ...],
) -> list[tuple[T, T | None]]:
    """The items not of ``compare``, each with its ``compare`` counterpart (same key) whose
    series ``names`` its chart also carries (``chart["compare"]``, ``["compare_env"]``)."""
    theirs = {key_of(i): i for i in items if env_of(i) == compare}
    out: list[tuple[T, T | None]] = []
    for item in items:
        if env_of(item) == compare:
            continue
        other = theirs.get(key_of(item))
        if other is not None:
            chart, versus = chart_of(item), chart_of(other)
            chart["compare"] = {n: versus[n] for n in names if n in versus}
            chart["compare_env"] = compare
        out.append((item, other))
    return out
