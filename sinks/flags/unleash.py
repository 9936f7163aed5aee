"""The button pressed in an existing flag system: Unleash's admin API.

A rule's ``flip: {flag: new-checkout, env: production, to: off, via: unleash}`` turns the
feature off in that Unleash environment when the rule fires, and back on when it
resolves (after ``quiet``, for ``restore: auto``)::

    POST <unleash_url>/api/admin/projects/<project>/features/<flag>/environments/<env>/off
    Authorization: <admin or personal access token>

A call that fails (no answer, 429 or 5xx) is retried ``attempts`` times with a doubling
back-off; one that is refused (another 4xx) is not. Either way the outcome is returned
and logged, never raised, so a broken Unleash never stops the flipper.

Other systems take the same shape (an HTTP call per flip and per restore): LaunchDarkly
``PATCH /api/v2/flags/{project}/{flag}`` with a semantic patch ``turnFlagOff``,
Flagsmith ``PATCH …/environments/{env}/featurestates/{id}/`` with ``enabled``,
GrowthBook ``POST /api/v1/features/{id}/toggle``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import structlog

log = structlog.get_logger("shiftright.flags")


@dataclass(frozen=True)
class CallResult:
    ok: bool
    status: int  # the last HTTP status (0: no answer)
    attempts: int
    error: str = ""


class UnleashClient:
    """Turns features on and off in Unleash environments (blocking calls)."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": token, "Content-Type": "application/json"}
        self.timeout_s, self.attempts, self.backoff_s = timeout_s, max(1, attempts), backoff_s
        self._sleep = sleep

    def path(self, project: str, feature: str, env: str, on: bool) -> str:
        parts = [quote(p, safe="") for p in (project, feature, env)]
        return "/api/admin/projects/{}/features/{}/environments/{}/".format(*parts) + (
            "on" if on else "off"
        )

    def turn(self, project: str, feature: str, env: str, on: bool) -> CallResult:
        """Turn ``feature`` on or off in ``env``; retried, never raises."""
        url = self.url + self.path(project, feature, env, on)
        result = CallResult(False, 0, 0, "not called")
        for attempt in range(1, self.attempts + 1):
            result = self._call(url, attempt)
            if result.ok or not _retryable(result.status):
                break
            if attempt < self.attempts:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
        event = "unleash_called" if result.ok else "unleash_call_failed"
        log.info(event, feature=feature, env=env, on=on, status=result.status, error=result.error)
        return result

    def _call(self, url: str, attempt: int) -> CallResult:
        try:
            answer = httpx.post(url, headers=self.headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            return CallResult(False, 0, attempt, f"{type(exc).__name__}: {exc}")
        ok = 200 <= answer.status_code < 300
        return CallResult(ok, answer.status_code, attempt, "" if ok else answer.text[:300])


def _retryable(status: int) -> bool:
    return status == 0 or status == 429 or status >= 500


#: A flip or restore Unleash did not take is tried again this much later.
RETRY_S = 30.0


@dataclass
class Held:
    """An Unleash flip this flipper made and will restore."""

    rule: str
    project: str
    flag: str
    env: str
    to_on: bool
    restore: str  # auto | manual
    quiet: float
    app: str = ""  # the rule's app (the change events' app)
    due: float | None = None  # epoch s of the restore, once the alert resolved


#: Told of each flip and restore made in Unleash (the flag, on or off now, the actor).
Changed = Callable[[Held, bool, str], None]


class UnleashFlips:
    """Alert flips in Unleash: once per firing, at most ``cap`` per flag and hour, restored
    ``quiet`` after the alert resolves; a flip Unleash did not take is tried again every
    ``RETRY_S`` while its alert fires. Unleash has no record of ours, so the firings seen,
    the hour's flips and the pending restores are kept by this process (a restarted
    flipper forgets a pending restore: press it in Unleash)."""

    def __init__(self, client: UnleashClient, project: str, changed: Changed) -> None:
        self.client, self.project, self._changed = client, project, changed
        self._seen: set[str] = set()
        self._recent: dict[tuple[str, str], list[float]] = {}
        self._held: dict[tuple[str, str, str], Held] = {}
        self._failed: dict[str, tuple[Held, int, float]] = {}  # firing -> flip, cap, retry at

    def fired(self, want: Held, key: str, at: float, cap: int) -> str:
        if key in self._seen:
            return "already"
        recent = [t for t in self._recent.get((want.flag, want.env), []) if at - t < 3600]
        if len(recent) >= cap:
            return "capped"
        if not self.client.turn(want.project, want.flag, want.env, want.to_on).ok:
            self._failed[key] = (want, cap, at + RETRY_S)
            return "failed"
        self._failed.pop(key, None)
        self._seen.add(key)
        self._recent[(want.flag, want.env)] = [*recent, at]
        self._held[(want.project, want.flag, want.env)] = want
        self._changed(want, want.to_on, f"alert:{want.rule}")
        return "flipped"

    def resolved(self, rule: str, project: str, flag: str, env: str, at: float) -> str:
        for key, (want, _, _) in list(self._failed.items()):
            if (want.rule, want.project, want.flag, want.env) == (rule, project, flag, env):
                del self._failed[key]  # the alert is over: no flip to make any more
        held = self._held.get((project, flag, env))
        if held is None or held.rule != rule or held.restore != "auto":
            return "kept"
        held.due = at + held.quiet
        return "kept"

    def retry_due(self, now: float) -> int:
        """Flips Unleash did not take, tried again; how many it took now."""
        done = 0
        for key, (want, cap, due) in list(self._failed.items()):
            if now >= due:
                done += self.fired(want, key, now, cap) == "flipped"
        return done

    def restore_due(self, now: float) -> int:
        done = self.retry_due(now)
        for where, held in list(self._held.items()):
            if held.due is None or now < held.due:
                continue
            if self.client.turn(held.project, held.flag, held.env, not held.to_on).ok:
                del self._held[where]
                self._changed(held, not held.to_on, f"alert:{held.rule}")
                done += 1
            else:
                held.due = now + RETRY_S
        return done
