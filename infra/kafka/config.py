"""The text of the local broker's server.properties and log4j2 configuration.

Pure functions of paths and ports, so the launcher can rewrite them on every start
(ports may change between runs; the static quorum lives in the config, not the log).
"""

from __future__ import annotations

from pathlib import Path


def server_properties(
    *,
    data_dir: Path,
    host: str,
    port: int,
    controller_port: int,
    partitions: int = 8,
    node_id: int = 1,
    voters: str | None = None,
    replicas: int = 1,
) -> str:
    """A combined broker+controller on loopback, durable across restarts: one node on
    its own (the default), or node ``node_id`` of a cluster whose controller quorum is
    ``voters`` (``id@host:port,…``), with ``replicas`` copies of every topic and
    ``replicas - 1`` of them in sync for a write to succeed."""
    min_isr = str(max(1, replicas - 1))
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        # Static quorum: `format` without --standalone; never mix with
        # controller.quorum.bootstrap.servers.
        "controller.quorum.voters": voters or f"{node_id}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": str(replicas),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": min_isr,
        "min.insync.replicas": min_isr,
        # 50 partitions each by default: minutes of coordinator loading on 2 cores for
        # nothing at this scale.
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        # Off on purpose: aiokafka asks for auto-creation in every metadata request, so
        # with it on a stray producer or subscription would create a topic with the
        # default partition count before ensure_topics()/Faust could declare it, and the
        # co-partitioning Faust tables rely on would silently break. A missing topic
        # should fail loudly, as on a managed cluster.
        "auto.create.topics.enable": "false",
        # A 2-core laptop, not a server: fewer threads, smaller segments. One network
        # thread serves the pipeline's dozen connections; two request handlers keep a
        # slow fsync of one partition from holding up every other request.
        "num.network.threads": "1",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "log.retention.hours": "168",
        "offsets.retention.minutes": str(7 * 24 * 60),
    }
    body = "\n".join(f"{key}={value}" for key, value in lines.items())
    return f"# Written by infra.kafka on every start; edits are overwritten.\n{body}\n"


def jvm_options(heap: str) -> list[str]:
    """The broker JVM's memory, garbage collector and JIT compiler flags, for a machine
    of a few cores that the broker shares with the pipeline."""
    return [
        f"-Xmx{heap}",
        # The throughput collector: it stops the broker for a young collection of a few
        # milliseconds and does nothing in between, where G1's concurrent refinement,
        # marking and write barriers cost CPU on every request for pauses nobody here
        # waits on (clients time out after seconds, not milliseconds).
        "-XX:+UseParallelGC",
        # The quick compiler only: the optimising one kept compiling for minutes after
        # start-up and whenever new code paths turned hot; its faster code saved the
        # request handlers about what that cost at a steady load, and less before
        # (docs/hot-path.md, the engines' configuration).
        "-XX:TieredStopAtLevel=1",
    ]


def log4j2_xml(*, log_file: Path) -> str:
    """Broker logs to a rolling file; nothing to the console (kafka.out stays for crashes)."""
    pattern = "[%d] %p %m (%c)%n"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by infra.kafka on every start; edits are overwritten. -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="{log_file}" filePattern="{log_file}.%i">
      <PatternLayout pattern="{pattern}"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""
