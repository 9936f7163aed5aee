"""Reading a batch message's lines in one call gives what reading them one by one gives,
or declines; it never reads lines another way than the line-by-line fast path would."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from shiftright_server.schemas import fast_lines, wire
from shiftright_server.schemas.fast_events import DECODERS, SINK_DECODERS, Accepted, accept
from shiftright_server.schemas.fast_lines import Message, accept_lines, accept_message

from tests.builders import encoded, event
from tests.unit.test_fast_events import (
    KINDS,
    LIMITS,
    NOW,
    NOW_MS,
    WINDOW,
    corpus,
    fast_values,
)


@pytest.fixture(autouse=True, params=["numpy", "python"])
def checks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here with the whole read's ids and times checked and read each way
    (NumPy from this many lines, Python's own parsers below)."""
    monkeypatch.setattr(fast_lines, "NUMPY_FROM", 0 if request.param == "numpy" else 10**9)


GOOD = [encoded("usage", NOW - timedelta(seconds=s), name=f"n{s}") for s in range(3)]
#: A line of two events and two lines of one: as many values as lines, none of them
#: valid line by line.
HEAD, TAIL = b'{"kind":"usage","app":"a","env":"e",', b'"name":"x"}'
SHIFTED = [GOOD[0] + GOOD[1], HEAD, TAIL]


def both(value: bytes) -> tuple[list[Accepted | None] | None, list[Accepted | None]]:
    lines = wire.split_events(value, wire.BATCH_HEADERS)
    one_by_one = [accept(line, "usage", NOW_MS, WINDOW, LIMITS) for line in lines]
    return accept_lines(value, lines, "usage", NOW_MS, WINDOW, LIMITS), one_by_one


def test_a_message_of_good_lines_is_read_at_once_as_line_by_line() -> None:
    at_once, one_by_one = both(b"\n".join(GOOD) + b"\r\n\n  \n")
    assert at_once is not None and at_once == one_by_one
    assert all(a is not None for a in at_once)


def test_every_line_of_odd_messages_reads_as_line_by_line_or_is_declined() -> None:
    usage = [payload for kind, payload in corpus() if kind == "usage"]
    messages = [b"\n".join([GOOD[0], payload, GOOD[1]]) for payload in usage]
    messages += [b"\n".join(SHIFTED), GOOD[0] + b" \t" + GOOD[1] + b"\n" + HEAD + b"\n" + TAIL]
    declined = 0
    for value in messages:
        at_once, one_by_one = both(value)
        declined += at_once is None
        assert at_once is None or at_once == one_by_one
    assert declined < len(messages)  # the odd but valid lines are read at once
    assert both(b"\n".join(SHIFTED))[0] is None
    assert len(DECODERS["usage"].decode_lines(b"\n".join(SHIFTED))) == len(SHIFTED)


#: Event times around the SDK's form and the window's bounds (NOW - 30 days, NOW + 5 min).
STAMPS = [
    "2026-12-05T03:59:00.123Z",
    "2026-11-31T10:00:00.000Z",  # no such day
    "2026-12-05T03:59:00.123+00:00",
    "2026-12-05T03:59:00.12Z",
    "2026-12-05t03:59:00.123Z",
    "2026-12-05T03:59:60.000Z",
    "2026-12-05T04:04:59.999Z",
    "2026-12-05T04:05:00.000Z",
    "2026-12-05T04:05:00.001Z",
    "2026-11-05T04:00:00.000Z",
    "2026-11-05T04:00:00.001Z",
    "２026-12-05T03:59:00.123Z",
    "2026-12-05T24:00:00.000Z",
    "2026-13-05T03:59:00.123Z",
    "2026-12-00T03:59:00.123Z",
    "2026-12-05T03:60:00.000Z",
    "2026-12-05T03:59:00.123\n",
    "2026-12-05T03:59:00. 23Z",
]
#: Event ids around the canonical form.
IDS = [
    str(uuid.uuid4()).upper(),
    f"{uuid.uuid4()}\n",
    f"{{{uuid.uuid4()}}}",
    uuid.uuid4().hex,
    str(uuid.uuid4()).replace("-", "_"),
    str(uuid.uuid4())[:-1] + "g",
    str(uuid.uuid4())[:-1] + "\u0660",
    str(uuid.uuid4())[:-2] + " a",  # a blank where a digit goes
    str(uuid.uuid4())[:-2] + "-a",
]


def with_ts(kind: str, stamp: str) -> bytes:
    return json.dumps({**event(kind, NOW), "ts": stamp}).encode()


def whole(kind: str, payloads: list[bytes]) -> Message | None:
    """The message of these payloads read whole, its lines split out or not (the same
    unless a line is blank: then only with its lines split out)."""
    value = b"\n".join(payloads)
    lines = wire.split_events(value, wire.BATCH_HEADERS)
    split = accept_message(value, lines, kind, WINDOW, LIMITS)
    unsplit = accept_message(value, None, kind, WINDOW, LIMITS)
    assert unsplit == (None if len(lines) < value.count(b"\n") + 1 else split)
    return split


def strict_values(accepted: Accepted) -> dict[str, Any]:
    values = fast_values(accepted)
    values.setdefault("origin", "user")  # what the sink fills in for an event without one
    return values


def test_a_message_read_whole_reads_every_line_as_the_strict_mirror_or_is_declined() -> None:
    declined = read = 0
    for kind in KINDS:
        good = [encoded(kind, NOW - timedelta(seconds=s)) for s in range(2)]
        odd = [payload for k, payload in corpus() if k == kind]
        odd += [with_ts(kind, stamp) for stamp in STAMPS]
        odd += [json.dumps({**event(kind, NOW), "event_id": i}).encode() for i in IDS]
        for payload in odd:
            value = b"\n".join([good[0], payload, good[1]])
            got = whole(kind, [value])
            declined, read = declined + (got is None), read + (got is not None)
            lines = wire.split_events(value, wire.BATCH_HEADERS) if got is not None else []
            for i, line in enumerate(lines):
                strict = accept(line, kind, NOW_MS, WINDOW, LIMITS, SINK_DECODERS)
                assert strict is not None, line
                assert got is not None
                at_once = Accepted(got.events[i], got.ts_ms[i])
                assert fast_values(at_once) == strict_values(strict), line
    assert declined > 0 and read > len(KINDS)  # odd but valid lines are read whole too
    assert whole("usage", [with_ts("usage", STAMPS[0])]) is not None
    assert whole("usage", [with_ts("usage", STAMPS[1])]) is None
    assert whole("usage", [GOOD[0], b"", GOOD[1]]) is not None  # a blank line: split out
    big = [encoded("usage", NOW, attributes={"k": "v" * 1000}) for _ in range(300)]
    assert whole("usage", big) is not None  # over the size limit, but no line is


def test_the_simulators_messages_are_read_whole() -> None:
    from shiftright_server.producers.simulator import Simulator

    sim = Simulator(seed=3)
    for kind in KINDS:
        events = sim.generate(kind, 50, NOW - timedelta(minutes=2), NOW)
        payloads = [json.dumps(ev, separators=(",", ":")).encode() for ev in events]
        for value in wire.pack(payloads):
            assert whole(kind, value.split(b"\n")) is not None, kind


def test_messages_read_together_read_as_each_read_whole_or_are_declined() -> None:
    usage = [
        [encoded("usage", NOW - timedelta(seconds=s + i)) for s in range(i + 1)] for i in range(3)
    ]
    values = [b"\n".join(lines) for lines in usage]
    windows = [WINDOW] * len(values)
    together = fast_lines.accept_messages(values, "usage", windows, LIMITS)
    assert together is not None and together.counts == [1, 2, 3]
    each = [accept_message(v, None, "usage", WINDOW, LIMITS) for v in values]
    assert [e for m in each if m for e in m.events] == together.events
    assert [t for m in each if m for t in m.ts_ms] == together.ts_ms
    # a bad line, a blank one, or a time outside its own message's window: declined
    recent = WINDOW._replace(oldest_ms=NOW_MS - 500)  # only the first message's time
    assert fast_lines.accept_messages([*values, b"{}"], "usage", [*windows, WINDOW], LIMITS) is None
    assert fast_lines.accept_messages([values[0], b""], "usage", windows[:2], LIMITS) is None
    assert fast_lines.accept_messages(values, "usage", [WINDOW, recent, WINDOW], LIMITS) is None
    assert fast_lines.accept_messages(values, "usage", [recent, WINDOW, WINDOW], LIMITS) is not None
