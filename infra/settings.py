"""Configuration, read once per process into frozen objects and passed down.

Environment variables use the prefix ``SHIFTRIGHT_`` and ``__`` for nesting, e.g.
``SHIFTRIGHT_KAFKA__BOOTSTRAP=broker:9092`` or
``SHIFTRIGHT_CLICKHOUSE__URL=http://user:pass@ch.example.com:8123``.
Nothing here reads the environment at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from shiftright_server.schemas.cluster import DEFAULT_REPLICA_NAME, DEFAULT_REPLICA_PATH
from shiftright_server.schemas.validation import Limits


class KafkaSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    bootstrap: str | None = Field(
        default=None,
        description="An existing cluster's bootstrap servers; when unset the local launcher runs Kafka.",
    )
    host: str = Field(
        default="127.0.0.1", description="Address the locally launched broker listens on."
    )
    port: int = Field(default=19092, description="Client port of the locally launched broker.")
    controller_port: int = Field(
        default=19093, description="KRaft controller port of the locally launched broker."
    )
    version: str = Field(
        default="4.1.1",
        description="Apache Kafka version the launcher resolves from Maven Central.",
    )
    partitions: int = Field(default=8, description="Partitions of every topic we create.")
    replication_factor: int = Field(
        default=-1,
        description="Replicas of every topic we create; -1 takes the cluster's "
        "default.replication.factor (1 on the local broker).",
    )
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of every topic we create (with acks=all, a write "
        "succeeds once this many replicas have it). Unset: the cluster's default.",
    )
    heap: str = Field(
        default="512m", description="Java heap of the locally launched broker (-Xmx)."
    )

    @property
    def launch_local(self) -> bool:
        return self.bootstrap is None

    @property
    def bootstrap_servers(self) -> str:
        return self.bootstrap or f"{self.host}:{self.port}"


class ClickHouseSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str | None = Field(
        default=None,
        description="A ClickHouse server's HTTP URL; when unset the embedded warehouse (chDB) is used.",
    )
    host: str = Field(default="127.0.0.1", description="Address the embedded warehouse listens on.")
    port: int = Field(default=18123, description="HTTP port of the embedded warehouse.")
    database: str = Field(default="shiftright", description="Database holding every table.")
    user: str | None = Field(
        default=None,
        description="Account the pipeline's processes use at the warehouse. With the "
        "embedded warehouse and warehouse accounts, it is the writer account, read from "
        "<state dir>/warehouse/writer.key.",
    )
    password: SecretStr | None = Field(default=None, description="That account's password or key.")
    cluster: str | None = Field(
        default=None,
        description="A ClickHouse cluster name: migrations create replicated local tables "
        "ON CLUSTER with Distributed tables in front. Unset: plain tables on one server.",
    )
    replica_path: str = Field(
        default=DEFAULT_REPLICA_PATH,
        description="ZooKeeper/Keeper path of each replicated table (with cluster).",
    )
    replica_name: str = Field(
        default=DEFAULT_REPLICA_NAME,
        description="Replica name of each replicated table (with cluster).",
    )

    @model_validator(mode="after")
    def _cluster_needs_server(self) -> ClickHouseSettings:
        if self.cluster and self.url is None:
            raise ValueError(
                "clickhouse.cluster names a cluster of ClickHouse servers: set clickhouse.url "
                "to one of them (the embedded warehouse is a single node)"
            )
        return self

    @property
    def launch_local(self) -> bool:
        return self.url is None

    @property
    def http_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"


class SinkSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    instances: int = Field(
        default=1,
        ge=1,
        description="How many sinks `shiftright up` starts in the sink's consumer group "
        "(each a process; the group shares the partitions out).",
    )
    name: str = Field(
        default="sink",
        description="Name this sink reports its counters under (run/NAME.json); each sink "
        "of one state directory needs its own.",
    )
    group_id: str = Field(
        default="shiftright-clickhouse-sink",
        description="Consumer group of the ClickHouse sink (prefixed by the namespace).",
    )
    batch_rows: int = Field(
        default=100_000,
        description="An insert batch is cut at this many rows, or at batch_seconds. The "
        "warehouse pays per insert for every materialized view on the table (some thirty "
        "parts written for a usage insert), so a sink behind its topics writes its backlog "
        "in batches this large.",
    )
    batch_seconds: float = Field(
        default=1.0,
        description="An insert batch is cut when its first message is this old, or at "
        "batch_rows; while the sink is behind its topics (its last fetch came back full, or "
        "the broker holds more past the batch than the batch has) it fills up to "
        "batch_rows, for at most 5 s.",
    )
    event_rows: Literal["columns", "models"] = Field(
        default="columns",
        description="How valid usage, health and change events become rows: columns taken "
        "straight from the fast validator's decoded events (one Native insert per table "
        "per batch); models: every event through the validation models, one row at a "
        "time (for comparison).",
    )
    retry_initial_seconds: float = Field(
        default=0.5, description="First back-off while the warehouse is away (doubles per retry)."
    )
    retry_max_seconds: float = Field(
        default=15.0, description="Longest back-off between retries of one batch."
    )


class StreamSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    app_id: str = Field(
        default="shiftright-streams",
        description="Faust application id: the stream worker's consumer group (prefixed by the namespace).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        description="How many stream workers `shiftright up` starts (each a process with "
        "its own static member id, worker-0 … worker-N-1).",
    )
    bucket_seconds: int = Field(default=60, description="Size of the event-time rollup buckets.")
    allowed_lateness_seconds: int = Field(
        default=10,
        description="A bucket closes when the partition's newest event time is this far past its end.",
    )
    idle_close_seconds: float = Field(
        default=5.0,
        description="A partition with no new record for this long (wall clock) is quiet: its due buckets close and its waiting errors are released.",
    )
    idle_lateness_seconds: int = Field(
        default=30,
        description="A quiet partition closes buckets that ended this long ago (wall clock), "
        "and waits this long after the broker was unreachable before closing any.",
    )
    max_event_bytes: int = Field(
        default=256 * 1024,
        description="Largest event accepted; larger ones are dead-lettered as oversized.",
    )
    max_future_seconds: int = Field(
        default=300,
        description="Events timestamped further ahead of their Kafka timestamp are dead-lettered (ts_in_future).",
    )
    max_age_days: int = Field(
        default=30, description="Events older than this are dead-lettered (ts_too_old)."
    )
    batch_max: int = Field(
        default=5_000, description="Most records the rollup step takes in one batch."
    )
    rollup_columns: bool = Field(
        default=True,
        description="The rollup step validates usage, health and change events on the fast "
        "path and adds each batch to the rollups in NumPy (exactly as one event at a time); "
        "off: one event at a time through the models (for comparison).",
    )
    batch_within_seconds: float = Field(
        default=0.25, description="Longest the worker waits to fill a batch."
    )
    fetch_min_bytes: int = Field(
        default=1024 * 1024,
        description="The worker's fetches wait at the broker until this much is waiting or "
        "fetch_max_wait_ms passed: Faust pays per fetch and per message, so fewer, fuller "
        "fetches cut its CPU per event by a fifth at 20,000 events/s (bench.streams_worker).",
    )
    fetch_max_wait_ms: int = Field(
        default=250,
        description="The longest a fetch waits for fetch_min_bytes: what quiet traffic adds "
        "to the latency of rollups, error groups and alerts.",
    )
    instance_id: str = Field(
        default="worker-0",
        description="This worker's static member id in its consumer group (Kafka static "
        "membership): a worker killed and started again with the same id gets its "
        "partitions back as soon as it rejoins, instead of after the dead member's session "
        "timeout. Every worker of a deployment that runs at the same time needs its own id, "
        "kept across its restarts (two running workers with one id displace each other). "
        "Empty: dynamic membership.",
    )
    session_timeout_seconds: int = Field(
        default=30,
        ge=6,
        description="How long the broker waits for a silent worker before it gives the "
        "worker's partitions to the rest of the group: what a worker killed and not started "
        "again under its id costs its partitions (a worker that stops cleanly leaves at "
        "once). Heartbeats come from the consumer's own thread every 3 s, so a busy worker "
        "does not miss them.",
    )
    web_port: int = Field(
        default=16066,
        description="Port reserved for the stream worker's web server (the worker runs with Faust's web server off).",
    )
    error_analytics: bool = Field(
        default=True,
        description="Run the error-analytics agents (grouping, health join) in this worker.",
    )
    grouping_rules: Path | None = Field(
        default=None,
        description="Custom error-grouping rules (a YAML file, see the error-analytics docs); none by default.",
    )
    alerting: bool = Field(
        default=True,
        description="Evaluate alert rules in this worker (signals.v1 and error transitions "
        "in, alerts.v1 out).",
    )
    flag_segments: bool = Field(
        default=True,
        description="Compute ticket-flag segments in this worker (usage events in, "
        "segment membership to flags.config.v1 out).",
    )
    signal_seconds: int = Field(
        default=10,
        description="Bucket size of the signals alert rules read (finer than the stored "
        "rollups so a rule need not wait a minute).",
    )
    signal_interval_seconds: float = Field(
        default=0.5,
        description="How often open signal buckets that changed are published, and rules "
        "evaluated.",
    )
    health_max_wait_ms: int = Field(
        default=15_000,
        description="How far (event time) the error stream may run past an error still "
        "waiting for its host's health before it is grouped without it (and, up to 10 s, how "
        "far the other hosts' health may). New and regressed groups are announced without "
        "waiting; this delays only the stored error rows. Lower: rows stored sooner, health "
        "of a late-reporting host missed more often.",
    )

    def limits(self) -> Limits:
        """What the validator accepts (shared by the stream workers and the sink)."""
        return Limits(
            max_bytes=self.max_event_bytes,
            max_future=timedelta(seconds=self.max_future_seconds),
            max_age=timedelta(days=self.max_age_days),
        )


class GatewaySettings(BaseModel):
    """The ingest gateway (``shiftright gateway``): HTTP JSON and OTLP/HTTP into Kafka."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(default="127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(default=14318, description="Port the gateway listens on.")
    workers: int = Field(
        default=1,
        description="Gateway processes sharing the port, each with its own bounded producer "
        "(and its own /metrics).",
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024,
        description="Largest request body, before and after Content-Encoding is undone (413 above).",
    )
    max_events_per_request: int = Field(
        default=10_000, description="Most events in one request (413 above)."
    )
    max_pending_events: int = Field(
        default=50_000,
        description="Events handed to Kafka but not yet acknowledged; above this requests get 429.",
    )
    max_pending_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="Bytes handed to Kafka but not yet acknowledged; above this requests get 429.",
    )
    ack_timeout_seconds: float = Field(
        default=10.0,
        description="How long a request waits for Kafka's acknowledgement (503 after).",
    )
    retry_after_seconds: int = Field(default=1, description="Retry-After of a 429 answer.")
    unavailable_retry_after_seconds: int = Field(
        default=5, description="Retry-After of a 503 answer (Kafka unreachable or slow)."
    )
    require_key: bool = Field(
        default=True,
        description="Refuse requests without an ingest key (false: local use only; the alerting API then allows anonymous reads).",
    )


class AlertingSettings(BaseModel):
    """The notifier (``python -m shiftright_server.infra.ops.notifier``): e-mail, webhook and
    Slack delivery of alert notifications and action-webhook calls, the flipper (rules'
    ``flip``, in shiftright's flags or Unleash) and the cohort watcher (cohort rules)."""

    model_config = ConfigDict(frozen=True)

    group_id: str = Field(
        default="shiftright-notifier",
        description="Consumer group of the notifier (prefixed by the namespace).",
    )
    external_url: str = Field(
        default="http://127.0.0.1:18080",
        description="Base URL put into notifications (links to an alert: <url>/alerts/<rule>).",
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for e-mail notifications.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_from: str = Field(
        default="shiftright@localhost", description="Sender address of notification e-mails."
    )
    smtp_user: str | None = Field(
        default=None, description="SMTP login, when the server wants one."
    )
    smtp_password: str | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS."
    )
    smtp_timeout_seconds: float = Field(default=10.0, description="Timeout of one SMTP delivery.")
    webhook_timeout_seconds: float = Field(
        default=10.0, description="Timeout of one webhook or Slack request."
    )
    webhook_max_alerts: int = Field(
        default=0, description="Alerts per webhook body (0: all; the rest counted)."
    )
    retry_max_attempts: int = Field(
        default=12,
        description="Attempts of one delivery before it is recorded as failed (12 with the "
        "default back-off: a receiver may be down ~18 minutes).",
    )
    retry_initial_seconds: float = Field(
        default=1.0, description="First back-off of a failed delivery (doubles per attempt)."
    )
    retry_max_seconds: float = Field(
        default=300.0, description="Longest back-off between delivery attempts."
    )
    email_per_minute: float = Field(
        default=30.0, description="Rate limit of e-mail deliveries (token bucket)."
    )
    webhook_per_minute: float = Field(
        default=600.0, description="Rate limit of webhook deliveries (token bucket)."
    )
    slack_per_minute: float = Field(
        default=60.0, description="Rate limit of Slack deliveries (token bucket)."
    )
    action_per_minute: float = Field(
        default=600.0, description="Rate limit of action-webhook calls (token bucket)."
    )
    rate_burst: int = Field(default=10, description="Deliveries a channel may send at once.")
    workers: int = Field(default=4, description="Deliveries in flight at once.")
    keep_days: float = Field(
        default=30.0, description="How long delivered keys are remembered (no resend)."
    )
    flips_per_hour: int = Field(
        default=4,
        ge=1,
        description="Alert flips of one flag in one environment per hour; later firings "
        "leave the flag alone (a rule's flip: max_per_hour overrides it).",
    )
    cohort_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often cohort rules (a flag's on-cohort against its off-cohort) are "
        "evaluated over the warehouse.",
    )
    unleash_url: str = Field(
        default="",
        description="Base URL of an Unleash server whose features rules flip with "
        "'flip: {…, via: unleash}' (its admin API); empty: no Unleash.",
    )
    unleash_token: str | None = Field(
        default=None,
        description="Unleash admin API token or personal access token (the Authorization "
        "header of each call).",
    )
    unleash_project: str = Field(
        default="default", description="Unleash project of the flipped features."
    )
    unleash_timeout_seconds: float = Field(default=5.0, description="Timeout of one Unleash call.")
    unleash_attempts: int = Field(
        default=3, ge=1, description="Attempts of one Unleash call (no answer, 429 or 5xx)."
    )


class DashboardSettings(BaseModel):
    """The team's web dashboard (``python -m shiftright_server.infra.ops.dashboard``)."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(default="127.0.0.1", description="Address the dashboard listens on.")
    port: int = Field(default=18080, description="Port of the dashboard (http://host:port).")
    poll_seconds: float = Field(
        default=2.0, description="How often live panels refresh while their tab is visible."
    )
    sql_max_rows: int = Field(default=1000, description="Rows the SQL console shows at most.")
    sql_max_seconds: int = Field(
        default=10, description="Longest a SQL console query may run at the warehouse."
    )
    cache_seconds: float = Field(
        default=1.0,
        ge=0.0,
        le=2.0,
        description="How long the shared panel cache serves a warehouse answer to every "
        "viewer in the same permission scope asking the same query (0 turns it off). At most "
        "2 s, the live target: a panel shows new data within this plus poll_seconds.",
    )
    queries_beside: int = Field(
        default=4,
        ge=0,
        le=32,
        description="Queries the dashboard runs beside its requests' own threads, for every "
        "request together, so a page's independent panels are read side by side (0: each "
        "page reads its panels one after another).",
    )
    cache_entries: int = Field(
        default=2000, ge=1, description="Answers the panel cache keeps at most (LRU)."
    )
    cache_megabytes: int = Field(
        default=64, ge=1, description="Memory the panel cache's answers may take, about."
    )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class AccessSettings(BaseModel):
    """Accounts, sessions, API tokens and share links of the dashboard and the alerting API
    (``<state dir>/access/identity.sqlite``)."""

    model_config = ConfigDict(frozen=True)

    external_url: str = Field(
        default="",
        description="The dashboard's address as people reach it (default: its own URL, "
        "dashboard.host and port): sign-in, share and unsubscribe links start with it. An "
        "https:// address also marks the session cookie Secure.",
    )
    session_idle_minutes: int = Field(
        default=12 * 60, ge=1, description="A session unused this long ends."
    )
    session_max_hours: int = Field(
        default=7 * 24, ge=1, description="A session ends this long after sign-in, used or not."
    )
    signin_link_hours: int = Field(
        default=72, ge=1, description="How long a one-time sign-in link stays valid."
    )
    signin_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins per account within signin_window_minutes before the "
        "account's sign-in is refused for the rest of the window (ten times this per address).",
    )
    signin_window_minutes: int = Field(
        default=15, ge=1, description="The window sign-in failures are counted in."
    )
    share_days: int = Field(
        default=30, ge=1, description="Default lifetime of a read-only share link."
    )
    digest_hour: int = Field(
        default=7,
        ge=0,
        le=23,
        description="Hour of the day (UTC) from which the notifier sends each daily digest "
        "of people's own subscriptions: the alerts that fired in the 24 hours before.",
    )


class Settings(BaseSettings):
    """The whole system's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="SHIFTRIGHT_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    state_dir: Path = Field(
        default=Path(".shiftright"),
        description="Data, logs and pid files of locally launched components.",
    )
    namespace: str = Field(
        default="",
        description="Prefix for topic names and consumer groups, so several pipelines can share a cluster.",
    )
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    sink: SinkSettings = SinkSettings()
    streams: StreamSettings = StreamSettings()
    gateway: GatewaySettings = GatewaySettings()
    alerting: AlertingSettings = AlertingSettings()
    dashboard: DashboardSettings = DashboardSettings()
    access: AccessSettings = AccessSettings()
    log_level: str = Field(
        default="INFO", description="Log level of every process (DEBUG, INFO, WARNING, ERROR)."
    )
    log_json: bool | None = Field(
        default=None, description="JSON logs; default: JSON unless stderr is a terminal."
    )

    def resolved_state_dir(self) -> Path:
        return self.state_dir.expanduser().resolve()

    def public_url(self) -> str:
        """Where people reach the dashboard (links in messages start with it)."""
        return (self.access.external_url or self.dashboard.url).rstrip("/")


WRITER_ACCOUNT = "shiftright-writer"


def writer_key_path(state_dir: Path) -> Path:
    """Where the embedded warehouse's writer key lives (mode 0600)."""
    return state_dir / "warehouse" / "writer.key"


def accounts_path(state_dir: Path) -> Path:
    """The embedded warehouse's accounts file."""
    return state_dir / "warehouse" / "accounts.json"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and any explicit overrides) into a frozen Settings. With the
    embedded warehouse's accounts on, processes use the writer account."""
    settings = Settings(**overrides)
    ch = settings.clickhouse
    key = writer_key_path(settings.resolved_state_dir())
    if not ch.launch_local or ch.user is not None or not key.is_file():
        return settings
    writer = ch.model_copy(
        update={"user": WRITER_ACCOUNT, "password": SecretStr(key.read_text().strip())}
    )
    return settings.model_copy(update={"clickhouse": writer})


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process load exactly these settings."""
    env: dict[str, str] = {}
    dumped = settings.model_dump(mode="json")
    if settings.clickhouse.password is not None:  # a child needs the secret itself
        dumped["clickhouse"]["password"] = settings.clickhouse.password.get_secret_value()
    for name, value in dumped.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                if inner is not None:
                    env[f"SHIFTRIGHT_{name.upper()}__{sub.upper()}"] = _env_value(inner)
        elif value is not None:
            env[f"SHIFTRIGHT_{name.upper()}"] = _env_value(value)
    env["SHIFTRIGHT_STATE_DIR"] = str(settings.resolved_state_dir())
    return env


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
