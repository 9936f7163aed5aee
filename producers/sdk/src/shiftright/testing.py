"""Test traffic, marked: the test a process is running (set by the pytest plugin) and the
same identity carried to another process in a W3C ``baggage`` request header.

A marked event has origin ``test`` and these attributes (OpenTelemetry names where one
exists): ``user_agent.synthetic.type=test``, ``test.case.name`` (the pytest node id),
``test.suite.run.id`` (one id per test run) and ``vcs.ref.head.revision`` (the commit).

Trust: a mark that arrives in a header is honoured only outside production (``env`` not
``prod``/``production``), or when it carries the app's ``test_token``. Either way a marked
event is kept and counted by errors, alerts and health like any other; only usage views
that separate test traffic from users read its origin (see docs/qa.md).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import quote, unquote

from shiftright.config import Config
from shiftright.context import Scope

SYNTHETIC = "user_agent.synthetic.type"
TEST_ID = "test.case.name"
RUN_ID = "test.suite.run.id"
COMMIT = "vcs.ref.head.revision"
#: The baggage entry that lets a mark through in production (never stored as an attribute).
TOKEN = "shiftright.test.token"
PROD_ENVS = frozenset({"prod", "production"})
MAX_BAGGAGE = 8192
MAX_VALUE = 200


@dataclass(frozen=True)
class MarkedTest:
    """Which test is running: node id, run id, commit (and the token for production)."""

    test_id: str
    run_id: str
    commit: str = ""
    token: str = ""

    def attributes(self) -> dict[str, str]:
        marks = {SYNTHETIC: "test", TEST_ID: self.test_id[:MAX_VALUE]}
        marks[RUN_ID] = self.run_id[:MAX_VALUE]
        if self.commit:
            marks[COMMIT] = self.commit[:MAX_VALUE]
        return marks

    def baggage(self) -> str:
        """The W3C baggage entries (``key=percent-encoded value``, comma-separated)."""
        entries = dict(self.attributes())
        if self.token:
            entries[TOKEN] = self.token
        return ",".join(f"{k}={quote(v, safe='')}" for k, v in entries.items())


_active: MarkedTest | None = None


def activate(mark: MarkedTest | None) -> None:
    """Mark every request this process serves from now on (None: stop marking)."""
    global _active
    _active = mark


def active() -> MarkedTest | None:
    return _active


def mark_scope(scope: Scope) -> Scope:
    """``scope``, or a copy carrying the running test's marks: while a test runs in this
    process, every event it sends is test traffic, whichever thread sends it."""
    mark = _active
    if mark is None or scope.attributes.get(TEST_ID) == mark.test_id:
        return scope
    marked = scope.child()
    marked.attributes.update(mark.attributes())
    return marked


def parse_baggage(header: str | None) -> dict[str, str]:
    """W3C baggage ``k=v;prop=x, k2=v2`` → ``{k: v}`` (values percent-decoded)."""
    found: dict[str, str] = {}
    if not header or len(header) > MAX_BAGGAGE:
        return found
    for member in header.split(","):
        pair = member.split(";", 1)[0]
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            found[key.strip()] = unquote(value.strip())[:MAX_VALUE]
    return found


def without_token(baggage: str) -> str:
    """The baggage header as stored with an error: the test token's entry left out."""
    if TOKEN not in baggage:
        return baggage
    return ",".join(m for m in baggage.split(",") if m.split("=", 1)[0].strip() != TOKEN)


def request_marks(baggage: str | None, config: Config | None) -> dict[str, str]:
    """The attributes that mark a request as test traffic, or {} for ordinary traffic."""
    mark = _active
    if mark is not None:  # a test in this very process: trusted
        return mark.attributes()
    entries = parse_baggage(baggage)
    if entries.get(SYNTHETIC) != "test" or config is None or not _trusted(entries, config):
        return {}
    return {k: entries[k] for k in (SYNTHETIC, TEST_ID, RUN_ID, COMMIT) if k in entries}


def _trusted(entries: dict[str, str], config: Config) -> bool:
    if config.env.lower() not in PROD_ENVS:
        return True
    token = entries.get(TOKEN, "")
    return bool(config.test_token) and hmac.compare_digest(
        token.encode(), config.test_token.encode()
    )
