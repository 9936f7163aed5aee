"""What a user sees from ``shiftright rules|silence|snooze|alerts|backtest`` and the alerting
HTTP API, with an in-memory configuration store and a fake warehouse (no services).

:class:`FakeStore` is checked against the real ``ConfigStore`` in
``tests/integration/test_rules_cli.py``."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from shiftright_server.infra.access.ingest_keys import IngestKey, KeyStore, Lookup
from shiftright_server.infra.alerting_config import AlertingConfig
from shiftright_server.infra.api.alerting import create_alerting_app
from shiftright_server.infra.api.alerting_handler import AlertingApi
from shiftright_server.infra.cli import alerting as alerting_cli
from shiftright_server.infra.cli import alerts as alerts_cli
from shiftright_server.infra.cli import app
from shiftright_server.infra.cli import rules as rules_cli
from shiftright_server.schemas.alerts import Silence
from shiftright_server.schemas.records import Rollup
from shiftright_server.schemas.rule_file import load_rules
from shiftright_server.streams.alerting import history
from typer.testing import CliRunner

RULES = """\
rules:
  - name: checkout-errors
    kind: threshold
    scope: {app: checkout, env: prod, source: error, per_key: false}
    measure: count
    threshold: 50
    for: 2m
    severity: critical
  - name: checkout-silent
    kind: absence
    scope: {app: checkout, per_key: false}
    after: 3m
subscriptions:
  - name: oncall
    channel: webhook
    to: http://127.0.0.1:9/hook
    matchers: ["severity>=warning"]
silences:
  - id: maint
    matchers: ["alertname=checkout-cpu"]
    starts_at: 2030-01-01T20:00:00Z
    ends_at: 2030-01-01T22:00:00Z
    created_by: alice
    comment: planned restart
"""


class FakeStore:
    """The configuration store in memory, with ConfigStore's observable behaviour."""

    def __init__(self) -> None:
        self.config = AlertingConfig()

    def read(self) -> AlertingConfig:
        return self.config

    def apply(self, text: str, author: str, source: str = "") -> AlertingConfig:
        rules = load_rules(text, source or "<rules>")
        self.config = dataclasses.replace(
            self.config,
            rules=rules,
            text=text,
            version=self.config.version + 1,
            applied_by=author,
            applied_at=datetime.now(UTC),
            source=source,
        )
        return self.config

    def add_silence(self, silence: Silence) -> None:
        silences = self.config.silences | {silence.id: silence}
        self.config = dataclasses.replace(self.config, silences=silences)

    def delete_silence(self, silence_id: str) -> None:
        silences = {k: v for k, v in self.config.silences.items() if k != silence_id}
        self.config = dataclasses.replace(self.config, silences=silences)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(alerting_cli, "open_store", lambda settings: fake)
    monkeypatch.setenv("SHIFTRIGHT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "220")
    return fake


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(RULES)
    return path


# -- rules ---------------------------------------------------------------------------------
def test_rules_test_counts_what_a_valid_file_holds(store: FakeStore, rules_file: Path) -> None:
    result = run("rules", "test", str(rules_file))
    assert result.exit_code == 0, result.output
    assert "valid — 2 rules, 1 subscription, 1 silence" in result.output
    assert store.config.version == 0  # nothing applied


def test_a_bad_file_names_file_line_and_field_and_exits_2(
    store: FakeStore, rules_file: Path
) -> None:
    rules_file.write_text(RULES.replace("    threshold: 50\n", "    treshold: 50\n"))
    for command in ("test", "apply"):
        result = (
            run("rules", command, str(rules_file), "--yes")
            if command == "apply"
            else run("rules", command, str(rules_file))
        )
        assert result.exit_code == 2, result.output
        assert (
            f"{rules_file}:2: rules[0] (checkout-errors).threshold: Field required" in result.output
        )
        assert f"{rules_file}:6: rules[0] (checkout-errors).treshold: Extra inputs" in result.output
        assert "2 problems: nothing applied" in result.output
    assert store.config.version == 0


def test_a_missing_file_is_an_error_not_a_traceback(store: FakeStore, tmp_path: Path) -> None:
    result = run("rules", "test", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "cannot read" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_apply_shows_the_diff_then_the_new_version(store: FakeStore, rules_file: Path) -> None:
    first = run("rules", "apply", str(rules_file), "--yes", "--author", "alice")
    assert first.exit_code == 0, first.output
    assert "against nothing applied yet" in first.output
    assert "+ rule checkout-errors" in _squash(first.output)
    assert "+ subscription oncall" in _squash(first.output)
    assert "4 added" in first.output
    assert "applied version 1 by alice" in first.output
    assert store.config.applied_by == "alice" and store.config.source == str(rules_file)

    rules_file.write_text(
        RULES.replace("threshold: 50", "threshold: 80")
        .replace("after: 3m", "after: 5m")
        .split("subscriptions:")[0]
        + "subscriptions: []\n"
    )
    second = run("rules", "apply", str(rules_file), "--yes", "--author", "bob")
    text = _squash(second.output)
    assert "against version 1, applied by alice" in text
    assert "~ rule checkout-errors threshold" in text
    assert "~ rule checkout-silent after" in text
    assert "- subscription oncall" in text and "- silence maint" in text
    assert "2 removed, 2 changed" in text
    assert "applied version 2 by bob" in text


def test_apply_dry_run_and_an_unchanged_file_apply_nothing(
    store: FakeStore, rules_file: Path
) -> None:
    dry = run("rules", "apply", str(rules_file), "--dry-run")
    assert dry.exit_code == 0 and "dry run: nothing applied" in dry.output
    assert store.config.version == 0
    run("rules", "apply", str(rules_file), "--yes")
    again = run("rules", "apply", str(rules_file), "--yes")
    assert again.exit_code == 0
    assert "no changes" in again.output and "identical to version 1" in again.output
    assert store.config.version == 1


def test_apply_asks_on_a_terminal_and_a_no_applies_nothing(
    store: FakeStore, rules_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules_cli, "_interactive", lambda: True)
    refused = run("rules", "apply", str(rules_file), input="n\n")
    assert refused.exit_code == 1 and "Apply?" in refused.output
    assert "nothing applied" in refused.output and store.config.version == 0
    agreed = run("rules", "apply", str(rules_file), input="y\n")
    assert agreed.exit_code == 0 and "applied version 1" in agreed.output


def test_list_and_show_print_the_applied_version(store: FakeStore, rules_file: Path) -> None:
    empty = run("rules", "list")
    assert empty.exit_code == 0 and "nothing applied yet" in empty.output
    assert run("rules", "show").exit_code == 1
    run("rules", "apply", str(rules_file), "--yes", "--author", "alice")
    listed = run("rules", "list")
    assert listed.exit_code == 0, listed.output
    rows = _rows(listed.output)
    assert [
        "checkout-errors",
        "threshold",
        "checkout",
        "prod",
        "error",
        "critical",
        "2m",
        "yes",
    ] in rows
    assert [
        "checkout-silent",
        "absence",
        "checkout",
        "prod",
        "usage",
        "warning",
        "0s",
        "yes",
    ] in rows
    assert any(r[:3] == ["oncall", "webhook", "http://127.0.0.1:9/hook"] for r in rows)
    assert "version 1, applied by alice at" in listed.output
    shown = CliRunner().invoke(app, ["rules", "show"])
    assert shown.exit_code == 0 and RULES in shown.stdout


# -- silences ------------------------------------------------------------------------------
def test_silence_add_list_delete(store: FakeStore, rules_file: Path) -> None:
    run("rules", "apply", str(rules_file), "--yes")
    added = run(
        "silence",
        "add",
        "--match",
        "app=checkout",
        "--match",
        "severity=warning",
        "--for",
        "2h",
        "--comment",
        "deploy window",
        "--by",
        "carol",
    )
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.splitlines()[0]
    silence = store.config.silences[silence_id]
    assert [str(m) for m in silence.matchers] == ['app="checkout"', 'severity="warning"']
    assert timedelta(hours=2) == silence.ends_at - silence.starts_at
    assert silence.created_by == "carol" and silence.comment == "deploy window"

    listed = run("silence", "list")
    rows = {r[0]: r for r in _rows(listed.output)}
    assert rows[silence_id][1] == "active" and "deploy window" in rows[silence_id]
    assert rows["maint"][1] == "upcoming" and rows["maint"][-1] == "rule file"
    assert list(rows).index(silence_id) < list(rows).index("maint")  # active first

    in_file = run("silence", "delete", "maint")
    assert in_file.exit_code == 1 and "written in the rule file" in in_file.output
    gone = run("silence", "delete", silence_id)
    assert gone.exit_code == 0 and f"deleted silence {silence_id}" in gone.output
    assert silence_id not in store.config.silences
    assert run("silence", "delete", silence_id).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--match", "app", "--for", "1h"], "bad matcher 'app'"),
        (["--match", "app=x", "--for", "soon"], "bad duration 'soon'"),
        (["--match", "severity>=bad", "--for", "1h"], ">= and <= compare severities only"),
    ],
)
def test_a_bad_silence_says_why_and_exits_2(
    store: FakeStore, args: list[str], message: str
) -> None:
    result = run("silence", "add", *args)
    assert result.exit_code == 2, result.output
    assert message in _squash(result.output) and not store.config.silences


def test_snooze_is_a_silence_on_the_rule(store: FakeStore, rules_file: Path) -> None:
    run("rules", "apply", str(rules_file), "--yes")
    unknown = run("snooze", "no-such-rule", "--for", "1h")
    assert unknown.exit_code == 1 and "no rule 'no-such-rule'" in unknown.output
    snoozed = run("snooze", "checkout-errors", "--for", "1h")
    assert snoozed.exit_code == 0 and "snoozed checkout-errors until" in snoozed.output
    (silence,) = store.config.silences.values()
    assert [str(m) for m in silence.matchers] == ['alertname="checkout-errors"']


def test_api_tokens_create_list_revoke(store: FakeStore) -> None:
    made = run("alerts", "tokens", "create", "--role", "viewer", "--label", "support desk")
    assert made.exit_code == 0, made.output
    token = made.stdout.splitlines()[0]
    assert token.startswith("srt_")
    listed = _rows(run("alerts", "tokens", "list").output)
    (key_id, role, label, _, state) = listed[1]
    assert (role, label, state) == ("viewer", "support desk", "active") and key_id in token
    assert run("alerts", "tokens", "revoke", key_id).exit_code == 0
    assert _rows(run("alerts", "tokens", "list").output)[1][4].startswith("revoked")
    assert run("alerts", "tokens", "create", "--role", "owner").exit_code == 2


# -- alerts and backtest (a fake warehouse) --------------------------------------------
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@dataclasses.dataclass
class Result:
    column_names: list[str]
    result_rows: list[list[Any]]


class FakeWarehouse:
    def __init__(self, rollups: list[Rollup] | None = None) -> None:
        self.rollups = rollups or []
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result:
        self.queries.append((sql, parameters or {}))
        if "FROM alerts_current" in sql:
            cols = history._ALERT_COLUMNS.split(", ")
            firing = [
                "checkout-errors",
                "fp1",
                "firing",
                {
                    "alertname": "checkout-errors",
                    "severity": "critical",
                    "app": "checkout",
                    "env": "prod",
                },
                {"summary": "72 errors"},
                T0,
                T0,
                72.0,
                50.0,
                T0,
            ]
            pending = [
                "checkout-silent",
                "fp2",
                "pending",
                {
                    "alertname": "checkout-silent",
                    "severity": "warning",
                    "app": "checkout",
                    "env": "prod",
                },
                {},
                None,
                T0,
                0.0,
                None,
                T0,
            ]
            return Result(cols, [firing, pending])
        if "FROM alerts FINAL" in sql:
            cols = [
                "ts",
                "rule",
                "rule_kind",
                "fingerprint",
                "previous",
                "state",
                "labels",
                "value",
                "threshold",
                "starts_at",
                "ends_at",
                "seq",
            ]
            row = [
                T0,
                "checkout-errors",
                "threshold",
                "fp1",
                "pending",
                "firing",
                {"app": "checkout", "env": "prod"},
                72.0,
                50.0,
                T0,
                None,
                2,
            ]
            return Result(cols, [row])
        if "count()" in sql:
            return Result(["count()"], [[len(self.rollups)]])
        raise AssertionError(sql)

    @contextlib.contextmanager
    def query_row_block_stream(self, sql: str, parameters: dict[str, Any]) -> Iterator[Any]:
        self.queries.append((sql, parameters))
        names = [c.strip() for c in history._ROLLUP_COLUMNS.split(",")]
        rows = [[getattr(r, n) for n in names] for r in self.rollups]
        yield iter([rows[i : i + 100] for i in range(0, len(rows), 100)])


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch) -> FakeWarehouse:
    fake = FakeWarehouse()
    monkeypatch.setattr(alerts_cli, "_client", lambda settings: fake)
    return fake


def test_alerts_lists_firing_then_pending(store: FakeStore, warehouse: FakeWarehouse) -> None:
    result = run("alerts", "--app", "checkout")
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert rows[1][:3] == ["firing", "checkout-errors", "critical"]
    assert rows[2][:3] == ["pending", "checkout-silent", "warning"]
    assert "app=checkout, env=prod" in result.output and "72 errors" in result.output
    assert "1 firing, 1 pending" in result.output
    sql, params = warehouse.queries[-1]
    assert params == {"k_app": "app", "v_app": "checkout"}


def test_alerts_history_shows_transitions(store: FakeStore, warehouse: FakeWarehouse) -> None:
    result = run("alerts", "--history", "--env", "prod", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "pending → firing" in result.output and "1 transition, newest first" in result.output
    assert warehouse.queries[-1][1]["limit"] == 5


def test_backtest_prints_when_the_rule_would_have_fired(
    store: FakeStore, warehouse: FakeWarehouse, rules_file: Path
) -> None:
    def bucket(minute: int, count: int) -> Rollup:
        at = T0 + timedelta(minutes=minute)
        return Rollup(
            app="checkout",
            env="prod",
            kind="error",
            key="ValueError",
            bucket_start=at,
            bucket_seconds=60,
            count=count,
            first_ts=at,
            last_ts=at + timedelta(seconds=50),
            source_partition=0,
            emitted_at=at + timedelta(minutes=1),
        )

    warehouse.rollups = [bucket(m, 80 if 20 <= m < 30 else 5) for m in range(60)]
    result = run(
        "backtest",
        "checkout-errors",
        "--file",
        str(rules_file),
        "--since",
        T0.isoformat(),
        "--until",
        (T0 + timedelta(hours=1)).isoformat(),
    )
    assert result.exit_code == 0, result.output
    assert "60 rollups read" in result.output
    fired, resolved = _rows(result.output)[1][:2]
    # threshold 50 per minute, for 2m: the 20:00 bucket is evaluated at 21:10, fires 2 min on
    assert fired.startswith("2030-01-01 12:23:10") and resolved.startswith("2030-01-01 12:31:10")
    assert "would have fired 1 time on 1 series" in result.output
    sql, params = warehouse.queries[-1]
    assert "FROM rollups FINAL" in sql and params["kind"] == "error"
    assert params["app"] == "checkout" and params["env"] == "prod"


def test_backtest_refuses_unknown_rules_and_error_group_rules(
    store: FakeStore, warehouse: FakeWarehouse, rules_file: Path
) -> None:
    unknown = run("backtest", "nope", "--file", str(rules_file))
    assert unknown.exit_code == 1 and "no rule 'nope'" in unknown.output
    rules_file.write_text("rules:\n  - {name: fresh, kind: error_group, scope: {app: checkout}}\n")
    grouped = run("backtest", "fresh", "--file", str(rules_file))
    assert grouped.exit_code == 1 and "error_group rules" in grouped.output


# -- the HTTP API's access rules -------------------------------------------------------------
@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, dict[str, str], FakeStore]:
    keys = KeyStore(tmp_path / "tokens.sqlite")
    viewer, _ = keys.create("viewer", None, "outsider")
    editor, _ = keys.create("editor", None, "alice")
    revoked, rk = keys.create("editor", None, "gone")
    keys.revoke(rk.id)
    ingest = "sr_0123456789ab_notatoken"
    fake = FakeStore()
    client = TestClient(create_alerting_app(AlertingApi(fake, keys, FakeWarehouse)))
    tokens = {"viewer": viewer, "editor": editor, "revoked": revoked, "ingest": ingest}
    return client, tokens, fake


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_viewers_read_editors_write_others_are_refused(api: Any) -> None:
    client, tokens, fake = api
    assert client.get("/rules").json()["error"] == "key_missing"
    assert client.get("/rules", headers=_auth(tokens["revoked"])).json()["error"] == "key_revoked"
    assert client.get("/rules", headers=_auth(tokens["ingest"])).status_code == 401
    got = client.get("/rules", headers=_auth(tokens["viewer"]))
    assert got.status_code == 200 and got.json()["version"] == 0 and got.headers["etag"] == '"0"'
    refused = client.put("/rules", content=RULES, headers=_auth(tokens["viewer"]))
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert fake.config.version == 0
    put = client.put("/rules", content=RULES, headers=_auth(tokens["editor"]))
    assert put.status_code == 200 and put.json()["version"] == 1
    assert fake.config.applied_by == "alice"  # the token's label
    assert client.get("/alerts", headers=_auth(tokens["viewer"])).json()["firing"] == 1


def test_api_without_required_keys_reads_are_open_and_writes_are_not() -> None:
    """``gateway.require_key = false`` (local development): no token needed to read."""
    open_api = AlertingApi(FakeStore(), EditorToken(), FakeWarehouse, anonymous_reads=True)
    client = TestClient(create_alerting_app(open_api))
    assert client.get("/silences").status_code == 200
    assert client.put("/rules", content=RULES).json()["error"] == "key_missing"
    assert client.put("/rules", content=RULES, headers=_auth(EditorToken.TOKEN)).status_code == 200


def test_api_invalid_rules_are_422_with_line_and_field(api: Any) -> None:
    client, tokens, fake = api
    bad = RULES.replace("after: 3m", "after: 3 minutes")
    answer = client.put("/rules", content=bad, headers=_auth(tokens["editor"]))
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid_rules"
    (problem,) = body["errors"]
    assert problem["line"] == 12 and problem["path"] == "rules[1] (checkout-silent).after"
    assert "bad duration" in problem["message"] and fake.config.version == 0
    control = client.put("/rules", content="rules: []\n\x1f", headers=_auth(tokens["editor"]))
    assert control.status_code == 422
    assert control.json()["errors"][0] | {"message": ""} == {
        "line": 2,
        "path": "(syntax)",
        "reason": "invalid",
        "message": "",
    }


def test_characters_yaml_refuses_are_a_problem_by_line_not_a_traceback(
    store: FakeStore, rules_file: Path
) -> None:
    rules_file.write_text(RULES.replace("after: 3m", "after: 3m\x07"))
    result = run("rules", "test", str(rules_file))
    assert result.exit_code == 2, result.output
    assert f"{rules_file}:12: (syntax): unacceptable character #x0007" in result.output


def _squash(text: str) -> str:
    """Rich output with runs of spaces collapsed (tables pad their cells)."""
    return "\n".join(" ".join(line.replace("│", " ").split()) for line in text.splitlines())


def _rows(text: str) -> list[list[str]]:
    """The cells of each rich table row (split on the box's vertical bars)."""
    out = []
    for line in text.splitlines():
        if "│" in line:
            out.append([c.strip() for c in line.strip().strip("│┃").split("│")])
        elif "┃" in line:
            out.append([c.strip() for c in line.strip().strip("┃").split("┃")])
    return out


# -- the API's OpenAPI document, fuzzed: no 5xx, every answer documented --------------------
class EditorToken:
    """Accepts one token, as an editor (the fuzzer sends it with every request)."""

    TOKEN = "sr_fuzz00000000_secret"

    def check(self, token: str) -> Lookup:
        if token != self.TOKEN:
            return Lookup(None, "unknown")
        return Lookup(IngestKey("fuzz00000000", "editor", None, "fuzz", "", None))


def _fuzzed_app() -> Any:
    fake = FakeStore()
    fake.apply(RULES, "alice", "team.yaml")
    return create_alerting_app(AlertingApi(fake, EditorToken(), FakeWarehouse))


FUZZED = schemathesis.openapi.from_asgi("/openapi.json", _fuzzed_app())


@FUZZED.parametrize()
@hypothesis.settings(max_examples=20, deadline=None)
def test_api_fuzzed_finds_no_server_error_and_no_undocumented_answer(case: Any) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    case.call_and_validate(
        headers=_auth(EditorToken.TOKEN),
        checks=[
            not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.allow_header_conformance,
        ],
    )
