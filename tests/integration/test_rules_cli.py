"""``shiftright rules|silence|snooze|alerts|backtest`` on the real broker (the compacted
configuration topic) and the real warehouse: what a user types and sees.

The unit tests' in-memory store is checked here against the real ``ConfigStore``."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shiftright_server.infra.cli import app
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import Settings, to_env
from shiftright_server.schemas.alerts import AlertState, AlertTransition
from shiftright_server.schemas.rule_file import RuleFileError
from shiftright_server.streams.alerting.service import open_store
from typer.testing import CliRunner

from tests.unit.test_alerts_cli import RULES, FakeStore, _rows, _squash

EXAMPLE = Path(__file__).parents[2] / "infra" / "examples" / "alerts.yaml"


def cli(settings: Settings, *args: str) -> Any:
    env = to_env(settings) | {"COLUMNS": "220"}
    return CliRunner().invoke(app, list(args), env=env)


def test_apply_then_list_then_a_changed_file_shows_its_diff(
    settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "team.yaml"
    rules.write_text(EXAMPLE.read_text())
    first = cli(settings, "rules", "apply", str(rules), "--yes", "--author", "alice")
    assert first.exit_code == 0, first.output
    assert "against nothing applied yet" in first.output
    assert "8 added" in first.output and "applied version 1 by alice" in first.output

    listed = cli(settings, "rules", "list")
    assert listed.exit_code == 0, listed.output
    names = {row[0]: row for row in _rows(listed.output)}
    assert names["checkout-errors"][1:7] == [
        "threshold",
        "checkout",
        "prod",
        "error",
        "critical",
        "2m",
    ]
    assert names["new-errors"][1:4] == ["error_group", "*", "prod"]
    assert "oncall" in names and "team-mail" in names
    assert "version 1, applied by alice at" in listed.output

    changed = (
        EXAMPLE.read_text()
        .replace("threshold: 50", "threshold: 80")
        .replace("    sensitivity: 0.5\n", "    sensitivity: 0.7\n")
    )
    rules.write_text(changed.split("  - name: checkout-silent")[0] + "subscriptions: []\n")
    second = cli(settings, "rules", "apply", str(rules), "--yes", "--author", "bob")
    assert second.exit_code == 0, second.output
    text = _squash(second.output)
    assert "against version 1, applied by alice" in text
    assert "~ rule checkout-errors threshold" in text
    assert "~ rule catalog-latency sensitivity" in text
    assert "- rule checkout-silent" in text and "- rule new-errors" in text
    assert "- subscription oncall" in text and "- subscription team-mail" in text
    assert "4 removed, 2 changed" in text and "applied version 2 by bob" in text

    shown = CliRunner().invoke(app, ["rules", "show"], env=to_env(settings))
    assert shown.exit_code == 0 and shown.stdout == rules.read_text()
    assert open_store(settings).read().version == 2


def test_a_bad_file_names_its_line_and_field_and_applies_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("after: 3m", "after: 3 minutes"))
    run = subprocess.run(
        [sys.executable, "-m", "shiftright_server.infra.cli", "rules", "apply", str(bad), "--yes"],
        env={**os.environ, **to_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "3 minutes" in text)
    assert (
        f"{bad}:{line}: rules[4] (checkout-silent).after: Value error, bad duration" in run.stderr
    )
    assert "Traceback" not in run.stderr
    assert open_store(settings).read().version == 0


def test_silence_add_list_delete_and_snooze(settings: Settings, tmp_path: Path) -> None:
    rules = tmp_path / "team.yaml"
    rules.write_text(RULES)
    assert cli(settings, "rules", "apply", str(rules), "--yes").exit_code == 0
    added = cli(
        settings,
        "silence",
        "add",
        "-m",
        "app=checkout",
        "-m",
        "severity=~warn.*",
        "--for",
        "2h",
        "--comment",
        "load test",
        "--by",
        "carol",
    )
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.splitlines()[0]
    snoozed = cli(settings, "snooze", "checkout-errors", "--for", "30m")
    assert snoozed.exit_code == 0, snoozed.output

    listed = cli(settings, "silence", "list")
    rows = {r[0]: r for r in _rows(listed.output)}
    assert rows[silence_id][1] == "active" and "carol" in rows[silence_id]
    assert 'app="checkout", severity=~"warn.*"' in rows[silence_id][2]
    assert rows["maint"][1] == "upcoming" and rows["maint"][-1] == "rule file"
    snooze_row = next(r for r in rows.values() if "checkout-err" in r[2])
    assert snooze_row[1] == "active"

    assert cli(settings, "silence", "delete", silence_id).exit_code == 0
    after = cli(settings, "silence", "list").output
    assert silence_id not in after and "maint" in after
    config = open_store(settings).read()
    assert silence_id not in config.silences and len(config.silences) == 1  # the snooze
    refused = cli(settings, "silence", "delete", "maint")
    assert refused.exit_code == 1 and "written in the rule file" in refused.output


def test_the_fake_store_behaves_like_the_config_store(settings: Settings) -> None:
    """The unit tests' FakeStore and ConfigStore, the same steps: the same observations."""
    from shiftright_server.streams.alerting.service import make_silence

    def observe(store: Any) -> list[Any]:
        seen: list[Any] = []
        empty = store.read()
        seen.append((empty.version, empty.text, empty.silences, empty.rules.rules))
        applied = store.apply(RULES, "alice", "team.yaml")
        read = store.read()
        for c in (applied, read):
            seen.append((c.version, c.text, c.applied_by, c.source, c.rules, c.silences))
        try:
            store.apply(RULES.replace("threshold: 50", "threshold: lots"), "bob", "team.yaml")
        except RuleFileError as exc:
            seen.append(str(exc))
        seen.append(store.read().version)
        store.apply(RULES.replace("threshold: 50", "threshold: 60"), "bob", "team2.yaml")
        second = store.read()
        seen.append((second.version, second.applied_by, second.source))
        seen.append(abs((second.applied_at - datetime.now(UTC)).total_seconds()) < 60)
        store.add_silence(silence)
        store.add_silence(silence.model_copy(update={"comment": "longer"}))
        seen.append(store.read().silences)
        seen.append(sorted(s.id for s in store.read().all_silences()))
        store.delete_silence(silence.id)
        store.delete_silence("never-made")
        seen.append(store.read().silences)
        return seen

    silence = make_silence(["app=checkout"], "1h", "deploy", "carol")
    assert observe(FakeStore()) == observe(open_store(settings))


# -- the warehouse: alerts and backtest ------------------------------------------------------
NOW = datetime.now(UTC).replace(microsecond=0)


def transition(
    rule: str, fp: str, seq: int, previous: AlertState, state: AlertState, ago_min: float
) -> AlertTransition:
    ts = NOW - timedelta(minutes=ago_min)
    labels = {"alertname": rule, "severity": "critical", "app": "checkout", "env": "prod"}
    return AlertTransition(
        rule=rule,
        rule_kind="threshold",
        fingerprint=fp,
        labels=labels,
        annotations={"summary": f"{rule} summary"},
        previous=previous,
        state=state,
        ts=ts,
        active_since=ts,
        starts_at=ts if state == "firing" else None,
        ends_at=ts if state == "resolved" else None,
        value=72.0,
        threshold=50.0,
        seq=seq,
        idempotency_key=f"{rule}{fp}{seq}",
    )


def plant_alerts(settings: Settings) -> None:
    """checkout-errors pending then firing (firing now); checkout-cpu fired and resolved;
    catalog-slow (preprod) pending now."""
    rows = [
        transition("checkout-errors", "a1", 1, "inactive", "pending", 10),
        transition("checkout-errors", "a1", 2, "pending", "firing", 8),
        transition("checkout-cpu", "b1", 1, "inactive", "pending", 60),
        transition("checkout-cpu", "b1", 2, "pending", "firing", 58),
        transition("checkout-cpu", "b1", 3, "firing", "resolved", 30),
        transition("catalog-slow", "c1", 1, "inactive", "pending", 1).model_copy(
            update={
                "labels": {
                    "alertname": "catalog-slow",
                    "severity": "warning",
                    "app": "catalog",
                    "env": "preprod",
                }
            }
        ),
    ]
    names = [
        "rule",
        "rule_kind",
        "fingerprint",
        "labels",
        "annotations",
        "previous",
        "state",
        "ts",
        "active_since",
        "starts_at",
        "ends_at",
        "value",
        "threshold",
        "seq",
        "idempotency_key",
    ]
    data = [[getattr(t, n) for n in names] for t in rows]
    client = get_client(settings.clickhouse, database=settings.clickhouse.database)
    client.insert("alerts", data, column_names=names)


def test_alerts_shows_what_fires_now_and_the_history(settings: Settings) -> None:
    plant_alerts(settings)
    now = cli(settings, "alerts")
    assert now.exit_code == 0, now.output
    rows = _rows(now.output)
    assert [r[:2] for r in rows[1:]] == [["firing", "checkout-errors"], ["pending", "catalog-slow"]]
    assert "1 firing, 1 pending" in now.output and "checkout-errors summary" in now.output
    prod = cli(settings, "alerts", "--env", "prod")
    assert "catalog-slow" not in prod.output and "1 firing, 0 pending" in prod.output

    history = cli(settings, "alerts", "--history", "--app", "checkout", "--since", "2h")
    assert history.exit_code == 0, history.output
    rows = _rows(history.output)[1:]
    assert [(r[1], r[2]) for r in rows] == [
        ("checkout-errors", "pending → firing"),
        ("checkout-errors", "inactive → pending"),
        ("checkout-cpu", "firing → resolved"),
        ("checkout-cpu", "pending → firing"),
        ("checkout-cpu", "inactive → pending"),
    ]
    limited = cli(settings, "alerts", "--history", "--limit", "2", "--rule", "checkout-cpu")
    assert "2 transitions" in limited.output and "checkout-errors" not in limited.output


def test_backtest_finds_the_firing_planted_in_the_rollups(
    settings: Settings, tmp_path: Path
) -> None:
    """Two days of per-minute error counts for checkout in prod, from two source partitions,
    with a 12-minute burst yesterday; other apps and envs burst too and must be ignored."""
    start = (NOW - timedelta(days=2)).replace(second=0)
    burst = start + timedelta(hours=30)
    names = [
        "app",
        "env",
        "kind",
        "key",
        "bucket_start",
        "bucket_seconds",
        "count",
        "sums",
        "mins",
        "maxs",
        "first_ts",
        "last_ts",
        "source_partition",
        "emitted_at",
    ]
    data = []
    for minute in range(0, 2 * 24 * 60 - 10):
        at = start + timedelta(minutes=minute)
        hot = burst <= at < burst + timedelta(minutes=12)
        for app_, env, partition, count in (
            ("checkout", "prod", 0, 40 if hot else 3),  # with partition 1: 80 in the burst
            ("checkout", "prod", 1, 40 if hot else 2),
            ("checkout", "preprod", 0, 500),
            ("catalog", "prod", 0, 500),
        ):
            data.append(
                [
                    app_,
                    env,
                    "error",
                    "ValueError",
                    at,
                    60,
                    count,
                    {},
                    {},
                    {},
                    at,
                    at + timedelta(seconds=59),
                    partition,
                    at + timedelta(minutes=1),
                ]
            )
    client = get_client(settings.clickhouse, database=settings.clickhouse.database)
    client.insert("rollups", data, column_names=names)

    rules = tmp_path / "team.yaml"
    rules.write_text(RULES)  # checkout-errors: > 50 errors a minute for 2m, checkout/prod
    assert cli(settings, "rules", "apply", str(rules), "--yes").exit_code == 0
    result = cli(settings, "backtest", "checkout-errors", "--since", "3d")
    assert result.exit_code == 0, result.output
    assert f"{len(data) // 4 * 2:,} rollups read" in result.output
    (row,) = _rows(result.output)[1:]
    fired = burst + timedelta(minutes=3, seconds=10)  # 1st bucket closes +1m10s, then for 2m
    resolved = burst + timedelta(minutes=13, seconds=10)  # the first quiet bucket closes
    assert row[0].startswith(f"{fired:%Y-%m-%d %H:%M:%S}"), row
    assert row[1].startswith(f"{resolved:%Y-%m-%d %H:%M:%S}"), row
    assert row[2] == "10m" and row[3] == "app=checkout, env=prod" and row[4] == "80"
    assert "would have fired 1 time on 1 series, firing 10m in all" in result.output

    # the same rule from a file with a higher threshold: never fires
    rules.write_text(RULES.replace("threshold: 50", "threshold: 100"))
    quiet = cli(settings, "backtest", "checkout-errors", "--since", "3d", "--file", str(rules))
    assert quiet.exit_code == 0 and "would have fired 0 times" in quiet.output
