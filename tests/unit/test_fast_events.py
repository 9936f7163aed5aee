"""The fast validator never accepts what the models refuse, and reads what it accepts as
the models do: it only decides sooner."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from shiftright_server.schemas.events import EVENT_MODELS
from shiftright_server.schemas.fast_events import (
    DECODERS,
    MIRRORS,
    SINK_DECODERS,
    UNSET,
    Accepted,
    Window,
    accept,
)
from shiftright_server.schemas.validation import Limits, Rejection, parse_event

from tests.builders import encoded, event

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
LIMITS = Limits()
WINDOW = Window.around(NOW_MS, LIMITS)

#: (field, value) changes to a valid event: odd types, bounds, formats, unknown keys.
MUTATIONS: list[tuple[str, Any]] = [
    ("status_code", "200"),
    ("status_code", 200.0),
    ("status_code", True),
    ("status_code", 1000),
    ("status_code", -1),
    ("duration_ms", -0.5),
    ("duration_ms", "12"),
    ("duration_ms", None),
    ("duration_ms", 7),
    ("value", 1e308),
    ("app", ""),
    ("app", "a" * 200),
    ("app", "a" * 201),
    ("app", "😀" * 200),
    ("app", "😀" * 201),
    ("app", 5),
    ("name", None),
    ("release", "r" * 201),
    ("origin", "robot"),
    ("origin", "test"),
    ("attributes", {"k": 1}),
    ("attributes", {f"k{i}": "v" for i in range(65)}),
    ("attributes", {"k": "v"}),
    ("flags", {f"f{i}": "on" for i in range(17)}),
    ("flags", {"new-checkout": "on"}),
    ("event_id", "not-a-uuid"),
    ("event_id", uuid.uuid4().hex),
    ("event_id", str(uuid.uuid4()).upper()),
    ("event_id", "{" + str(uuid.uuid4()) + "}"),
    ("ts", "2026-12-05T03:59:00Z"),
    ("ts", "2026-12-05T03:59:00.5+02:00"),
    ("ts", "2026-12-05T03:59:00.123456Z"),
    ("ts", "2026-12-05T03:59:00"),
    ("ts", "2026-12-05 03:59:00Z"),
    ("ts", "2026-13-05T03:59:00Z"),
    ("ts", "2026-12-05T24:00:00Z"),
    ("ts", 1764900000),
    ("ts", "2026-12-05T04:05:00Z"),  # the future bound, exactly
    ("ts", "2026-12-05T04:05:00.001Z"),
    ("ts", "2026-11-05T04:00:00Z"),  # the age bound, exactly
    ("ts", "2020-01-01T00:00:00Z"),
    ("ts", "2027-01-01T00:00:00Z"),
    ("kind", "error"),
    ("surprise", 1),
    ("metrics", {}),
    ("metrics", {"system.cpu.utilization": "0.5"}),
    ("metrics", {"system.cpu.utilization": 1}),
    ("change_type", "rollback"),
    ("description", "d" * 2001),
    ("frames", [{}]),
    ("frames", [{"module": "m", "function": "f", "lineno": 3, "in_app": False}]),
    ("frames", [{"lineno": -1}]),
    ("frames", [{"lineno": "3"}]),
    ("frames", [{"in_app": 1}]),
    ("frames", [{"surprise": 1}]),
    ("frames", [{}] * 257),
    ("frames", {"module": "m"}),
    ("handled", True),
    ("handled", 1),
    ("level", "warn"),
    ("level", "fatal"),
    ("exception_type", ""),
    ("exception_message", "m" * 8193),
    ("stacktrace", "s" * 65537),
]
DROPS = ["event_id", "ts", "origin", "kind", "app", "name", "metrics", "change_type"]
DROPS += ["exception_type", "frames"]
KINDS = ("usage", "health", "change", "error")


def corpus() -> list[tuple[str, bytes]]:
    base = NOW - timedelta(seconds=30)
    out: list[tuple[str, bytes]] = []
    for kind in KINDS:
        out.append((kind, encoded(kind, base)))
        for name, value in MUTATIONS:
            fields = event(kind, base)
            fields[name] = value
            out.append((kind, json.dumps(fields).encode()))
        for name in DROPS:
            fields = event(kind, base)
            fields.pop(name, None)
            out.append((kind, json.dumps(fields).encode()))
    out += [
        ("usage", b"{oops"),
        ("usage", b"[1, 2]"),
        ("usage", b""),
        ("usage", b'{"kind":"usage","app":"a","env":"e","name":"\\ud800"}'),
        ("usage", b'{"kind":"usage","app":"a","env":"e","name":"n","app":"b"}'),
        ("usage", b'{"kind":"usage","app":"a","env":"e","name":"n","value":NaN}'),
        ("usage", b'{"kind":"usage","app":"a","env":"e","name":"n","value":1e400}'),
        ("usage", b'{"kind":"usage","app":"a","env":"e","name":"n"} trailing'),
        ("usage", b'{"kind":"usage","app":"a","env":"e","name":"caf\\u00e9"}  '),
        ("usage", encoded("usage", base, name="x" * 300_000)),
    ]
    return out


def model_values(model: Any) -> dict[str, Any]:
    values = dict(model)
    values["ts_ms"] = int(model.ts.timestamp() * 1000)
    if "frames" in values:
        values["frames"] = [tuple(dict(f).values()) for f in values["frames"]]
    return values


def fast_values(accepted: Accepted) -> dict[str, Any]:
    fast = accepted.event
    names = [n for n in fast.__struct_fields__ if getattr(fast, n) is not UNSET]
    values = {n: getattr(fast, n) for n in names}
    if "event_id" in values:
        values["event_id"] = uuid.UUID(values["event_id"])
    values.pop("ts", None)
    values["ts_ms"] = accepted.ts_ms
    if "frames" in values:
        values["frames"] = [msgspec.structs.astuple(f) for f in values["frames"]]
    return values


@pytest.mark.parametrize(("kind", "raw"), corpus())
def test_what_the_fast_path_accepts_the_models_accept_with_the_same_values(
    kind: str, raw: bytes
) -> None:
    fast = accept(raw, kind, NOW_MS, WINDOW, LIMITS, SINK_DECODERS)
    if fast is None:
        return  # the models decide: nothing to hold the fast path to
    parsed = parse_event(raw, kind, NOW, LIMITS, uuid.uuid4())
    assert not isinstance(parsed, Rejection), parsed
    expected = model_values(parsed)
    got = fast_values(fast)
    assert {k: expected[k] for k in got} == got
    # what the fast path left unset, the sink fills in as the models do
    assert fast.event.origin is not UNSET or parsed.origin == "user"


def test_the_fast_path_takes_the_common_events_and_the_models_the_unusual_ones() -> None:
    base = NOW - timedelta(seconds=30)
    for kind in ("usage", "health", "change"):
        assert accept(encoded(kind, base), kind, NOW_MS, WINDOW, LIMITS) is not None
        micros = {**event(kind, base), "ts": "2026-12-05T03:59:00.123456Z"}
        assert accept(json.dumps(micros).encode(), kind, NOW_MS, WINDOW, LIMITS) is None
    # errors: the sink's fast path only (the stream worker reads them with the models)
    assert accept(encoded("error", base), "error", NOW_MS, WINDOW, LIMITS) is None
    assert accept(encoded("error", base), "error", NOW_MS, WINDOW, LIMITS, SINK_DECODERS)


def test_the_simulators_events_all_take_the_fast_path() -> None:
    from shiftright_server.producers.simulator import Simulator

    sim = Simulator(seed=3)
    for kind in KINDS:
        for ev in sim.generate(kind, 50, NOW - timedelta(minutes=2), NOW):
            raw = json.dumps(ev, separators=(",", ":")).encode()
            assert accept(raw, kind, NOW_MS, WINDOW, LIMITS, SINK_DECODERS) is not None, raw


def test_the_mirror_has_the_models_fields() -> None:
    assert set(MIRRORS) == set(SINK_DECODERS) == {*DECODERS, "error"}
    for kind, mirror in MIRRORS.items():
        assert set(mirror.__struct_fields__) == set(EVENT_MODELS[kind].model_fields), kind
