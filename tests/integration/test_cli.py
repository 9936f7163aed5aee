"""The commands a user types: up (with the simulator), status, sql, down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.integration.conftest import wait_for
from tests.integration.kafka_fixture import free_ports


def shiftright(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shiftright_server.infra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_up_status_sql_and_down_on_embedded_defaults(tmp_path: Path, kafka_jars: Path) -> None:
    kafka, controller, warehouse, gateway, dashboard = free_ports(5)
    lib = tmp_path / "state" / "kafka" / kafka_jars.name  # the session's jars, no Maven run
    lib.parent.mkdir(parents=True)
    lib.symlink_to(kafka_jars, target_is_directory=True)
    env = {
        **os.environ,
        "SHIFTRIGHT_STATE_DIR": str(tmp_path / "state"),
        "SHIFTRIGHT_KAFKA__PORT": str(kafka),
        "SHIFTRIGHT_KAFKA__CONTROLLER_PORT": str(controller),
        "SHIFTRIGHT_CLICKHOUSE__PORT": str(warehouse),
        "SHIFTRIGHT_GATEWAY__PORT": str(gateway),
        "SHIFTRIGHT_DASHBOARD__PORT": str(dashboard),
        "COLUMNS": "200",
    }
    try:
        up = shiftright(env, "up", "--rate", "200", "--workers", "2", "--sinks", "2", "--no-watch")
        assert up.returncode == 0, up.stdout + up.stderr
        for step in (
            "Kafka",
            "Warehouse",
            "Topics",
            "Schema",
            "Stream workers",
            "Alert rules",
            "ClickHouse sink",
            "Notifier",
            "Ingest gateway",
            "Dashboard",
            "Simulator",
        ):
            assert f"✓ {step}" in up.stdout, up.stdout
        assert "starter rules applied (version 1)" in up.stdout, up.stdout
        assert f"http://127.0.0.1:{warehouse}" in up.stdout
        assert f"http://127.0.0.1:{gateway}" in up.stdout
        assert f"http://127.0.0.1:{dashboard}" in up.stdout
        flat = " ".join(up.stdout.split())  # the status line may wrap at 80 columns
        assert "messages in" in flat and "events stored" in flat and "dead letters" in flat
        # the first start makes an admin and prints its one-time sign-in link
        link = re.search(r"admin@localhost: (http://\S+/signin/link/\S+)", flat)
        assert link and link[1].startswith(f"http://127.0.0.1:{dashboard}/"), up.stdout
        with urllib.request.urlopen(link[1], timeout=10) as page:  # the dashboard answers it
            assert "Choose a password" in page.read().decode()

        def queryable() -> bool:
            query = shiftright(env, "sql", "SELECT count() FROM events_usage", "--format", "TSV")
            rows = query.stdout.strip()
            return query.returncode == 0 and rows.isdigit() and int(rows) > 0

        wait_for(queryable, 90, "simulated traffic to become queryable", interval=1)

        apps = shiftright(
            env, "sql", "SELECT DISTINCT app, env FROM events_usage ORDER BY ALL", "--format", "TSV"
        )
        seen = {tuple(line.split("\t")) for line in apps.stdout.splitlines()}
        assert seen >= {("checkout", "prod"), ("catalog", "prod")}, apps.stdout

        status = shiftright(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        for component in (
            "kafka",
            "warehouse",
            "streams",
            "sink",
            "notifier",
            "gateway",
            "dashboard",
            "simulator",
        ):
            assert component in status.stdout
        assert f"http://127.0.0.1:{dashboard} ready" in status.stdout, status.stdout
        for component in ("streams-1", "sink-1"):
            assert re.search(rf"{component}\s+│\s+up\s+│\s+pid \d+", status.stdout), status.stdout
        # each group shares the raw-event partitions out between its two members
        members = re.findall(
            r"│ (streams|sink)\s+│ (\S+)[^│]*│ ([\d,]+) of 4 topics", status.stdout
        )
        assert sorted(m[:2] for m in members) == [
            ("sink", "sink"),
            ("sink", "sink-1"),
            ("streams", "worker-0"),
            ("streams", "worker-1"),
        ], status.stdout
        for group in ("sink", "streams"):
            held = [int(p) for role, _, parts in members if role == group for p in parts.split(",")]
            assert sorted(held) == list(range(8)), status.stdout  # every partition, once

        # the notifier reports what it runs and what it delivered (every 10 s)
        last = [status.stdout]

        def notifier_reported() -> bool:
            last[0] = shiftright(env, "status").stdout
            return "rules v1 · delivered" in last[0]

        wait_for(notifier_reported, 40, lambda: f"the notifier's report:\n{last[0]}", interval=2)

        again = shiftright(env, "topics")  # idempotent: every topic is there already
        assert again.returncode == 0, again.stdout + again.stderr
        assert "exists   events.usage.v1 (8 partitions)" in again.stdout, again.stdout
        assert "(0 created now)" in again.stdout, again.stdout

        rules = shiftright(env, "rules", "list")
        assert rules.returncode == 0 and "checkout-errors" in rules.stdout, rules.stdout

        bad = shiftright(env, "sql", "SELECT * FROM no_such_table")
        assert bad.returncode == 1
        assert "no_such_table" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        down = shiftright(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("stopped") >= 10, down.stdout
    assert "stopped  streams-1" in down.stdout and "stopped  sink-1" in down.stdout, down.stdout
    after = shiftright(env, "status")
    assert after.returncode == 3, "status must say the pipeline is down"
