"""The statements the cluster layout generates parse with ClickHouse's own parser.

No ClickHouse cluster runs here (no Keeper, one embedded engine), so this checks that
every generated statement is valid ClickHouse SQL and keeps its cluster clauses; the
engine formats it back (``formatQuery``) without running it.
"""

from __future__ import annotations

from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import ClickHouseSettings
from shiftright_server.schemas.cluster import Cluster
from shiftright_server.schemas.migrate import plan


def test_the_engine_parses_every_statement_placed_on_a_cluster(clickhouse_url: str) -> None:
    client = get_client(ClickHouseSettings(url=clickhouse_url))
    planned = plan("shiftright", Cluster("prod"))
    statements = planned.setup + [s for _, placed in planned.steps for s in placed]
    for statement in statements:
        formatted = client.query(
            "SELECT formatQuery({q:String})", parameters={"q": statement}
        ).result_rows[0][0]
        if not formatted.startswith("INSERT"):  # a copy runs once, through Distributed
            assert "ON CLUSTER prod" in formatted, statement
        if "_local ON CLUSTER" in formatted and formatted.startswith("CREATE TABLE"):
            assert "ENGINE = Replicated" in formatted, formatted
    assert len(statements) > 30
