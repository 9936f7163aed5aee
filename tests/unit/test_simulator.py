"""The traffic simulator: wire-valid events, realistic shape, incidents that show, replayable."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shiftright_server.producers.simulator import (
    EVENT_KINDS,
    INCIDENT_KINDS,
    TOPOLOGY,
    Incident,
    Simulator,
    diurnal_factor,
    parse_incident,
    run_realtime,
)
from shiftright_server.schemas.events import EVENT_ADAPTER, HEALTH_METRICS

WEDNESDAY = datetime(2026, 3, 4, tzinfo=UTC)
T0 = WEDNESDAY.replace(hour=14)
TS_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def ts_of(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["ts"])


def site_frame(event: dict[str, Any]) -> dict[str, Any]:
    """The innermost in-app frame: where the app code raised or called out."""
    frames: list[dict[str, Any]] = event["frames"]
    return [f for f in frames if f["in_app"]][-1]


def root_cause(event: dict[str, Any]) -> dict[str, Any]:
    """The exception at the bottom of an event's chain (the event itself when unchained)."""
    chain = event["attributes"].get("exception.chain")
    if chain:
        causes: list[dict[str, Any]] = json.loads(chain)
        return causes[-1]
    return {"type": event["exception_type"], "frames": event["frames"]}


def errors_of(
    events: list[dict[str, Any]], app: str = "checkout", env: str = "prod"
) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == "error" and (e["app"], e["env"]) == (app, env)]


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_generated_event_is_valid_on_the_wire(kind: str) -> None:
    events = Simulator(seed=11).generate(kind, 600, T0, T0 + timedelta(hours=2))
    for event in events:
        model = EVENT_ADAPTER.validate_python(event)
        assert model.kind == kind
        assert TS_FORMAT.match(event["ts"]), event["ts"]
        event_id = uuid.UUID(event["event_id"])
        assert event_id.version == 7 and event_id.variant == uuid.RFC_4122
        assert event_id.int >> 80 == int(ts_of(event).timestamp() * 1000)  # id time == ts
    assert len({e["event_id"] for e in events}) == len(events)


def test_tick_events_are_valid_sorted_and_cover_the_interval_once() -> None:
    sim = Simulator(seed=3, rate=300)
    start = T0 + timedelta(microseconds=123_456)  # not on a millisecond boundary
    first = sim.tick(start, 30.0)
    second = sim.tick(start + timedelta(seconds=30), 30.0)
    for event in first + second:
        EVENT_ADAPTER.validate_python(event)
    assert Counter(e["kind"] for e in first).keys() >= {"usage", "error", "health"}
    assert all(start <= ts_of(e) < start + timedelta(seconds=30) for e in first)
    assert [e["ts"] for e in first] == sorted(e["ts"] for e in first)
    assert ts_of(second[0]) >= start + timedelta(seconds=30)
    ids = [e["event_id"] for e in first + second]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_generate_returns_exactly_n_of_the_kind_within_the_range(kind: str) -> None:
    start = T0 + timedelta(microseconds=500)
    end = start + timedelta(seconds=7)
    events = Simulator(seed=5).generate(kind, 1234, start, end)
    assert len(events) == 1234
    assert {e["kind"] for e in events} == {kind}
    assert all(start <= ts_of(e) < end for e in events)
    assert ts_of(events[-1]) - ts_of(events[0]) > timedelta(seconds=6)  # spread, not bunched


def test_generate_rejects_an_empty_range_and_unknown_kinds() -> None:
    sim = Simulator()
    with pytest.raises(ValueError, match="start < end"):
        sim.generate("usage", 3, T0, T0)
    with pytest.raises(ValueError, match="unknown event kind 'metric'"):
        sim.generate("metric", 3, T0, T0 + timedelta(seconds=1))
    assert sim.generate("usage", 0, T0, T0) == []


def test_error_types_have_a_long_tail() -> None:
    errors = Simulator(seed=2).generate("error", 20_000, T0, T0 + timedelta(hours=1))
    counts = sorted(Counter(e["exception_type"] for e in errors).values(), reverse=True)
    assert len(counts) >= 25
    assert counts[0] >= 10 * statistics.median(counts)
    sites = Counter(e["attributes"]["sim.site"] for e in errors)
    assert len(sites) >= 50  # ~30 sites in each of two apps


def test_errors_carry_site_stack_and_request_context() -> None:
    errors = Simulator(seed=4).generate("error", 3000, T0, T0 + timedelta(hours=1))
    sizes = {len(root_cause(e)["frames"]) for e in errors}
    assert min(sizes) >= 3 and max(sizes) <= 8 and len(sizes) > 2
    assert any(not f["in_app"] for e in errors for f in e["frames"][1:])  # library frames inside
    for event in errors:
        assert event["stacktrace"].startswith("Traceback (most recent call last):\n")
        assert event["stacktrace"].endswith(
            f"{event['exception_type']}: {event['exception_message']}"
        )
        assert site_frame(event)["filename"] in event["stacktrace"]
        assert event["route"].startswith("/") and event["user_id"] and event["customer_id"]
    messages = Counter((e["attributes"]["sim.site"], e["exception_message"]) for e in errors)
    by_site = Counter(site for site, _ in messages)
    assert by_site.most_common(1)[0][1] > 20  # the same site says many different things


def test_some_sites_report_a_generic_wrapper_raised_from_the_real_error() -> None:
    errors = Simulator(seed=4).generate("error", 3000, T0, T0 + timedelta(hours=1))
    wrapped = [e for e in errors if "exception.chain" in e["attributes"]]
    assert 0.05 < len(wrapped) / len(errors) < 0.5
    sites = {e["attributes"]["sim.site"] for e in wrapped}
    assert len(sites) >= 6  # one wrapper type and message hides several different bugs
    for event in wrapped:
        root = root_cause(event)
        assert event["exception_type"].endswith(".api.errors.UpstreamError")
        assert root["type"] != event["exception_type"] and root["relation"] == "cause"
        assert [f["function"] for f in event["frames"] if f["in_app"]] == ["dispatch"]
        assert f"{root['type']}: {root['message']}" in event["stacktrace"]
        assert "The above exception was the direct cause" in event["stacktrace"]


def test_same_site_keeps_type_and_function_across_releases_while_lines_shift() -> None:
    sim = Simulator(seed=9)
    hour = timedelta(hours=1)
    before = sim.generate("error", 4000, T0, T0 + hour)
    changes = sim.generate("change", 60, T0 + hour, T0 + 2 * hour)  # ~15 deploys
    after = sim.generate("error", 4000, T0 + 2 * hour, T0 + 3 * hour)
    assert any(c["change_type"] == "deploy" for c in changes)
    shapes: dict[str, set[tuple[str, str, str]]] = {}
    lines: dict[str, set[int]] = {}
    for event in before + after:
        frame = site_frame(event)
        site = event["attributes"]["sim.site"]
        shapes.setdefault(site, set()).add(
            (event["exception_type"], frame["module"], frame["function"])
        )
        lines.setdefault(site, set()).add(frame["lineno"])
    assert all(len(shape) == 1 for shape in shapes.values())
    assert any(len(numbers) > 1 for numbers in lines.values())
    assert all(max(n) - min(n) < 15 for n in lines.values())  # a shift, not a different place


def test_usage_looks_like_real_traffic() -> None:
    usage = Simulator(seed=6).generate("usage", 30_000, T0, T0 + timedelta(hours=1))
    names = Counter(e["name"] for e in usage if e["app"] == "catalog")
    assert names["product.view"] > 20 * names["review.submit"]
    statuses = Counter(e["status_code"] // 100 for e in usage)
    assert statuses[2] > 0.9 * len(usage) and statuses[4] > 0
    synthetic = [e for e in usage if e["origin"] == "synthetic"]
    assert synthetic and all(e["name"] == "health.check" and not e["user_id"] for e in synthetic)
    users = Counter(e["user_id"] for e in usage if e["user_id"])
    assert 1000 < len(users) <= 5000
    assert users.most_common(1)[0][1] > 10 * statistics.median(users.values())  # Zipf-ish
    assert len({e["customer_id"] for e in usage if e["customer_id"]}) > 100
    for name in ("product.view", "checkout.payment"):
        durations = [e["duration_ms"] for e in usage if e["name"] == name]
        assert statistics.mean(durations) > statistics.median(durations)  # right-skewed
    releases = {(e["app"], e["env"]): e["release"] for e in usage}
    assert releases[("checkout", "prod")] == "1.4.2" and releases[("catalog", "preprod")] == "2.8.0"


def test_diurnal_rate_peaks_in_the_afternoon_and_dips_at_night_and_weekends() -> None:
    def count(at: datetime) -> int:
        events = Simulator(seed=1, rate=500).tick(at, 20.0)
        return sum(e["kind"] in ("usage", "error") for e in events)

    assert count(WEDNESDAY.replace(hour=15)) > 3 * count(WEDNESDAY.replace(hour=3))
    saturday = WEDNESDAY + timedelta(days=3)
    assert count(saturday.replace(hour=15)) < 0.8 * count(WEDNESDAY.replace(hour=15))
    assert diurnal_factor(WEDNESDAY.replace(hour=15)) == max(
        diurnal_factor(WEDNESDAY.replace(hour=h)) for h in range(24)
    )


def test_flat_traffic_sends_the_mean_rate_at_any_hour_of_any_day() -> None:
    def count(at: datetime) -> int:
        events = Simulator(seed=1, rate=500, diurnal=False).tick(at, 20.0)
        return sum(e["kind"] in ("usage", "error") for e in events)

    saturday_night = (WEDNESDAY + timedelta(days=3)).replace(hour=3)
    counts = [
        count(WEDNESDAY.replace(hour=15)),
        count(WEDNESDAY.replace(hour=3)),
        count(saturday_night),
    ]
    assert all(abs(c - 500 * 20) < 0.05 * 500 * 20 for c in counts), counts


def test_every_host_reports_health_on_schedule_with_all_metrics() -> None:
    sim = Simulator(seed=8, rate=50, health_interval=5)
    health = [e for e in sim.tick(T0, 60) if e["kind"] == "health"]
    per_host = Counter(e["host"] for e in health)
    n_hosts = sum(d.hosts for envs in TOPOLOGY.values() for d in envs.values())
    assert len(per_host) == n_hosts and set(per_host.values()) == {12}
    for event in health:
        assert set(event["metrics"]) == set(HEALTH_METRICS)
        assert 0 <= event["metrics"]["system.cpu.utilization"] <= 1
    fs = [
        e["metrics"]["system.filesystem.utilization"]
        for e in health
        if e["host"] == "catalog-prod-1"
    ]
    assert fs[-1] >= fs[0]  # disks fill up slowly


def test_error_spike_raises_the_share_of_its_site() -> None:
    start, length = T0 + timedelta(minutes=5), timedelta(minutes=5)
    sim = Simulator(seed=7, rate=300, incidents=[Incident("error-spike", start, length)])
    before = sim.generate("error", 4000, T0, start)
    during = sim.generate("error", 4000, start, start + length)

    def share(events: list[dict[str, Any]]) -> float:
        errors = errors_of(events)
        return sum(bool(e["attributes"]["sim.site"] == "checkout-e09") for e in errors) / len(
            errors
        )

    def site_count(events: list[dict[str, Any]]) -> int:
        return sum(e["attributes"]["sim.site"] == "checkout-e09" for e in errors_of(events))

    assert share(during) > 5 * share(before)
    spiked = [e for e in errors_of(during) if e["attributes"]["sim.site"] == "checkout-e09"]
    assert all(e["attributes"]["sim.incident"] == "error-spike" for e in spiked)
    assert not any("sim.incident" in e["attributes"] for e in errors_of(during, "catalog"))
    live_before, live_during = sim.tick(start - timedelta(minutes=1), 60), sim.tick(start, 60)
    assert site_count(live_during) > 10 * max(1, site_count(live_before))  # its rate is ×30


def test_usage_drop_follows_a_deploy_and_drives_the_feature_to_zero() -> None:
    start, length = T0 + timedelta(minutes=2), timedelta(minutes=2)
    incident = Incident("usage-drop", start, length, target="cart.add")
    sim = Simulator(seed=7, rate=150, incidents=[incident])
    before, during, after = sim.tick(T0, 120), sim.tick(start, 120), sim.tick(start + length, 30)

    def cart_adds(events: list[dict[str, Any]]) -> int:
        return sum(
            e["kind"] == "usage"
            and e["name"] == "cart.add"
            and e["app"] == "checkout"
            and e["env"] == "prod"
            for e in events
        )

    deploy = during[0]
    assert (deploy["kind"], deploy["change_type"], deploy["ts"]) == (
        "change",
        "deploy",
        "2026-03-04T14:02:00.000Z",
    )
    assert deploy["attributes"] == {"sim.incident": "usage-drop"} and deploy["name"] == "1.4.3"
    assert cart_adds(during) < 0.01 * cart_adds(before)
    assert all(
        e["release"] == "1.4.3" for e in during if (e["app"], e["env"]) == ("checkout", "prod")
    )
    rollback = after[0]
    assert (rollback["change_type"], rollback["name"]) == ("deploy", "1.4.2")
    assert cart_adds(after) > 0.1 * cart_adds(before)  # back: 30 s after, a quarter of 120 s


def test_cpu_saturation_pins_the_host_and_slows_its_requests() -> None:
    start, length = T0 + timedelta(minutes=2), timedelta(minutes=2)
    incident = Incident("cpu-saturation", start, length, "catalog", "prod", "catalog-prod-2")
    sim = Simulator(seed=7, rate=100, incidents=[incident])
    before, during = sim.tick(T0, 120), sim.tick(start, 120)

    def host(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        return [e for e in events if e["kind"] == kind and e["host"] == "catalog-prod-2"]

    assert all(e["metrics"]["system.cpu.utilization"] < 0.95 for e in host(before, "health"))
    hot = host(during, "health")
    assert hot and all(e["metrics"]["system.cpu.utilization"] >= 0.95 for e in hot)
    assert all(e["attributes"]["sim.incident"] == "cpu-saturation" for e in hot)
    assert min(e["metrics"]["system.cpu.load_average.1m"] for e in hot) > max(
        e["metrics"]["system.cpu.load_average.1m"] for e in host(before, "health")
    )
    slow = statistics.median(e["duration_ms"] for e in host(during, "usage"))
    assert slow > 2 * statistics.median(e["duration_ms"] for e in host(before, "usage"))
    others = [e for e in during if e["kind"] == "health" and e["host"] == "catalog-prod-1"]
    assert all(e["metrics"]["system.cpu.utilization"] < 0.95 for e in others)


def test_latency_jump_multiplies_one_features_duration() -> None:
    start, length = T0 + timedelta(minutes=2), timedelta(minutes=2)
    incident = Incident("latency-jump", start, length, "catalog", "prod", "search.query")
    sim = Simulator(seed=7, rate=100, incidents=[incident])
    before, during = sim.tick(T0, 120), sim.tick(start, 120)

    def median_ms(events: list[dict[str, Any]], name: str) -> float:
        return statistics.median(
            float(e["duration_ms"])
            for e in events
            if e["kind"] == "usage" and e["name"] == name and e["env"] == "prod"
        )

    assert median_ms(during, "search.query") > 3.5 * median_ms(before, "search.query")
    assert median_ms(during, "product.view") < 1.3 * median_ms(before, "product.view")


def test_same_seed_and_calls_give_the_same_events() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        sim = Simulator(seed=seed, rate=200, incidents=[Incident("error-spike", T0, timedelta(1))])
        events = sim.tick(T0, 20) + sim.tick(T0 + timedelta(seconds=20), 0.1)
        return events + [
            e for kind in EVENT_KINDS for e in sim.generate(kind, 50, T0, T0 + timedelta(1))
        ]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_a_seed_replays_the_same_traffic_it_always_has() -> None:
    """Recorded traffic for seed 7 is replayable: the same calls must keep giving the same
    events (kinds, features, error sites, deploys and ids), whatever the code's layout."""
    incidents = [
        Incident("error-spike", T0 + timedelta(seconds=2), timedelta(seconds=5)),
        Incident("usage-drop", T0 + timedelta(seconds=4), timedelta(seconds=4), "catalog"),
    ]
    events = Simulator(seed=7, rate=100, health_interval=5, incidents=incidents).tick(T0, 10.0)
    usage = Counter(e["name"] for e in events if e["kind"] == "usage")
    sites = Counter(e["attributes"]["sim.site"] for e in events if e["kind"] == "error")
    changes = [(e["ts"], e["name"], e["previous_value"]) for e in events if e["kind"] == "change"]
    assert Counter(e["kind"] for e in events) == {
        "usage": 1660,
        "health": 20,
        "error": 22,
        "change": 2,
    }
    assert usage.most_common(4) == [
        ("product.view", 335),
        ("cart.view", 203),
        ("category.browse", 120),
        ("search.query", 113),
    ]
    assert sites.most_common(3) == [("checkout-e02", 4), ("checkout-e03", 3), ("catalog-e01", 3)]
    assert changes == [
        ("2026-03-04T14:00:04.000Z", "2.7.1", "2.7.0"),
        ("2026-03-04T14:00:08.000Z", "2.7.0", "2.7.1"),
    ]
    assert (events[0]["event_id"], events[-1]["event_id"]) == (
        "019cb925-fb00-7f9e-836c-a0ad93674758",
        "019cb926-220b-7741-8aae-269b4a2b9335",
    )


def test_parse_incident_reads_the_cli_syntax() -> None:
    now = T0
    spike = parse_incident("error-spike@+60s/120s", now)
    assert spike == Incident(
        "error-spike", now + timedelta(seconds=60), timedelta(seconds=120), target="checkout-e09"
    )
    hot = parse_incident("cpu-saturation@-1m/2h:catalog/preprod/catalog-preprod-2", now)
    assert (hot.start, hot.duration, hot.app, hot.env, hot.target) == (
        now - timedelta(minutes=1),
        timedelta(hours=2),
        "catalog",
        "preprod",
        "catalog-preprod-2",
    )
    by_type = parse_incident("error-spike@0/5m:catalog/prod/KeyError", now)
    assert by_type.target == "catalog-e01"
    assert parse_incident("latency-jump@30/1.5m:catalog", now).target == "product.view"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("meltdown@+1s/2s", "unknown incident kind 'meltdown'"),
        ("error-spike+1s/2s", "expected KIND@START/DURATION"),
        ("error-spike@+1s", "missing /DURATION"),
        ("error-spike@+1x/2s", "bad start offset '\\+1x'"),
        ("error-spike@+1s/-2s", "bad duration '-2s'"),
        ("error-spike@+1s/0s", "bad duration '0s'"),
        ("usage-drop@1s/1s:shop", "unknown app 'shop'"),
        ("usage-drop@1s/1s:checkout/dev", "unknown env 'dev'"),
        ("usage-drop@1s/1s:checkout/prod/teleport", "unknown usage-drop target 'teleport'"),
        ("cpu-saturation@1s/1s:checkout/prod/checkout-prod-9", "target 'checkout-prod-9'"),
    ],
)
def test_parse_incident_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_incident(text, T0)


def test_simulator_rejects_incidents_it_cannot_apply() -> None:
    assert set(INCIDENT_KINDS) == {"error-spike", "cpu-saturation", "usage-drop", "latency-jump"}
    with pytest.raises(ValueError, match="unknown latency-jump target 'teleport'"):
        Simulator(incidents=[Incident("latency-jump", T0, timedelta(1), target="teleport")])
    with pytest.raises(ValueError, match="health_interval"):
        Simulator(health_interval=0)


class RecordingEmitter:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit_dict(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True

    def emit_many(self, events: Iterable[dict[str, Any]]) -> int:
        batch = list(events)
        self.events.extend(batch)
        return len(batch)


def test_run_realtime_emits_current_traffic_until_the_duration_ends() -> None:
    emitter = RecordingEmitter()
    progress: list[int] = []
    began = datetime.now(UTC)
    sent = run_realtime(emitter, Simulator(rate=2000), duration=0.45, on_progress=progress.append)
    ended = datetime.now(UTC)
    assert sent == len(emitter.events) > 100
    assert all(began - timedelta(seconds=0.2) <= ts_of(e) <= ended for e in emitter.events)
    assert 3 <= len(progress) <= 7 and progress == sorted(progress) and progress[-1] == sent
    assert (ended - began).total_seconds() < 1.0


def test_run_realtime_stops_promptly_on_the_stop_event() -> None:
    stop, emitter = threading.Event(), RecordingEmitter()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(
            run_realtime(emitter, Simulator(rate=100), duration=None, stop=stop)
        )
    )
    worker.start()
    running_by = time.monotonic() + 5
    while not emitter.events and time.monotonic() < running_by:  # it is emitting
        time.sleep(0.01)
    assert emitter.events, "the simulator emitted nothing in 5 s"
    stopped_at = time.monotonic()
    stop.set()
    worker.join(timeout=2)
    assert not worker.is_alive() and time.monotonic() - stopped_at < 0.5
    assert result == [len(emitter.events)]
