"""The pipeline on a three-node Kafka cluster (replication factor 3, min.insync.replicas
2): two stream workers and two sinks; a worker, a sink and a broker killed -9 in turn
while events flow; exactly the events sent come out, counted once."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cluster_round import cluster_settings, run_round, start_cluster


def test_a_worker_a_sink_and_a_broker_killed_in_turn_lose_and_double_nothing(
    tmp_path: Path, kafka_jars: Path, clickhouse_url: str
) -> None:
    cluster = start_cluster(tmp_path, kafka_jars)
    try:
        settings = cluster_settings(cluster, clickhouse_url, tmp_path / "state")
        done = run_round(cluster, settings, n=2_000)
    finally:
        cluster.stop()
    assert [what for _, what in done.timeline][-1] == "all stored and rolled up, once"
