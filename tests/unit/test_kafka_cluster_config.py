"""The configuration each node of a local Kafka cluster gets."""

from __future__ import annotations

from pathlib import Path

from shiftright_server.infra.kafka.cluster import KafkaCluster, _cluster_id
from shiftright_server.infra.kafka.config import server_properties


def _props(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )


def test_a_single_node_keeps_one_copy_of_everything() -> None:
    props = _props(
        server_properties(data_dir=Path("/d"), host="127.0.0.1", port=1, controller_port=2)
    )
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:2"
    assert props["default.replication.factor"] == props["min.insync.replicas"] == "1"


def test_each_node_of_a_cluster_knows_the_whole_quorum_and_replicates(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path, [(9001, 9101), (9002, 9102), (9003, 9103)])
    texts = [_props((node.write_config()).read_text()) for node in cluster.nodes]
    assert [p["node.id"] for p in texts] == ["1", "2", "3"]
    voters = "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    assert {p["controller.quorum.voters"] for p in texts} == {voters}
    for props in texts:
        assert props["default.replication.factor"] == "3"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"  # one node may die without stopping acks=all
    assert len({p["log.dirs"] for p in texts}) == 3
    assert cluster.bootstrap == "127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003"
    assert len({node.cluster_id for node in cluster.nodes}) == 1


def test_cluster_ids_look_like_kafkas_and_never_read_as_an_option() -> None:
    ids = [_cluster_id() for _ in range(2_000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
