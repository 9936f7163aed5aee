"""``shiftright import errors`` against a real PostgreSQL server (started here) and the real
pipeline: a backfill, a second run that brings only the new rows, and ``--follow``; the
rows end as error events and error groups in ClickHouse, each exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from shiftright_server.infra.settings import Settings, to_env

from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline
from tests.integration.postgres_fixture import Postgres, start_postgres, stop_postgres

Sql = Callable[[str], list[tuple[Any, ...]]]
MAP = (
    "id=id,ts=logged_at,type=exc_class,message=message,stacktrace=trace,app=service,user_id=account"
)
TRACE = """Traceback (most recent call last):
  File "/srv/billing/billing/invoices.py", line {line}, in render
    total = sum(l.amount for l in lines)
TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'"""


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    pg = start_postgres()
    try:
        yield pg
    finally:
        stop_postgres(pg)


def insert(engine: sa.Engine, n: int, start: datetime, exc: str = "TypeError") -> None:
    rows = [
        {
            "logged_at": start + timedelta(seconds=i),
            "exc_class": exc,
            "message": f"invoice {1000 + i} failed",
            "trace": TRACE.format(line=40 + i % 3),
            "service": "billing",
            "account": f"acct-{i % 4}",
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO error_log (logged_at, exc_class, message, trace, service, account) "
                "VALUES (:logged_at, :exc_class, :message, :trace, :service, :account)"
            ),
            rows,
        )


def cli(settings: Settings, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, **to_env(settings)}
    return [sys.executable, "-m", "shiftright_server.infra.cli", *args], env


def test_postgres_rows_are_imported_once_then_followed(
    settings: Settings, sql: Sql, postgres: Postgres
) -> None:
    engine = sa.create_engine(postgres.url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE error_log (id bigserial PRIMARY KEY, logged_at timestamptz NOT NULL, "
                "exc_class text, message text, trace text, service text, account text)"
            )
        )
    now = datetime.now(UTC).replace(microsecond=0)
    insert(engine, 40, now - timedelta(minutes=20))
    insert(engine, 10, now - timedelta(minutes=15), exc="KeyError")
    pipeline = Pipeline(settings)
    pipeline.start()
    args = (
        "import",
        "errors",
        "--url",
        postgres.url,
        "--table",
        "error_log",
        "--map",
        MAP,
        "--env",
        "prod",
    )
    try:
        cmd, env = cli(settings, *args)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "emitted 50" in done.stdout
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert "rows 0" in again.stdout, again.stdout + again.stderr  # the position was kept

        follower = subprocess.Popen(
            [*cmd, "--follow", "--interval", "1"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            insert(engine, 7, now - timedelta(minutes=5))
            wait_for(
                lambda: sql("SELECT count() FROM events_error") == [(57,)],
                90,
                lambda: f"57 imported errors: {sql('SELECT count() FROM events_error')}",
            )
        finally:
            follower.send_signal(signal.SIGTERM)
            follower.wait(30)
        wait_for(
            lambda: sql("SELECT sum(count) FROM error_groups FINAL") == [(57,)],
            90,
            lambda: (
                f"57 grouped: {sql('SELECT sum(count) FROM error_groups FINAL')}\n"
                f"{pipeline.log('streams')}"
            ),
        )
        assert sql("SELECT uniqExact(event_id), min(app), max(env) FROM events_error") == [
            (57, "billing", "prod")
        ]
        groups = sql("SELECT exception_type, count FROM error_groups FINAL ORDER BY count DESC")
        # Line numbers differ, messages carry ids: the same bug is one group.
        assert groups == [("TypeError", 47), ("KeyError", 10)]
        assert sql("SELECT uniqExact(user_id) FROM events_error") == [(4,)]
    finally:
        pipeline.stop()
