"""The rollup step reads error events on the fast path: what it gives for every line is
what the models give, event and "as given" alike, to the byte it is passed on as."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.events import ErrorEvent, Frame
from shiftright_server.schemas.validation import parse_event_as_given
from shiftright_server.streams import fast_errors
from shiftright_server.streams.fast_errors import parse_error

from tests.unit.test_fast_events import LIMITS, NOW, NOW_MS, corpus

MADE = uuid.UUID("01936f0e-0000-7000-8000-000000000001")


def simulated() -> list[bytes]:
    events = Simulator(seed=5).generate("error", 300, NOW - timedelta(minutes=2), NOW)
    return [json.dumps(e, separators=(",", ":")).encode() for e in events]


def assert_same(raw: bytes) -> None:
    """The two readings agree."""
    fast, fast_given = parse_error(raw, NOW_MS, LIMITS, MADE)
    model, model_given = parse_event_as_given(raw, "error", NOW, LIMITS, MADE)
    assert fast == model
    assert fast_given == model_given
    if isinstance(model, ErrorEvent):
        assert isinstance(fast, ErrorEvent)
        assert fast.model_dump_json() == model.model_dump_json()
        assert set(fast.__dict__) == set(ErrorEvent.model_fields)


@pytest.mark.parametrize("raw", [raw for kind, raw in corpus() if kind == "error"])
def test_every_error_line_reads_as_the_models_read_it(raw: bytes) -> None:
    assert_same(raw)


def test_the_simulators_errors_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = simulated()
    for raw in lines:
        assert_same(raw)
    # their frames and chains included
    assert any(b'"frames":[{' in raw for raw in lines)
    assert any(b"exception.chain" in raw for raw in lines)
    # and none of them needed the models
    monkeypatch.setattr(fast_errors, "parse_event_as_given", None)
    assert all(parse_error(raw, NOW_MS, LIMITS, MADE)[1] for raw in lines)


def assert_read_as_the_model_reads(raw: bytes) -> bool:
    """The attach step's reading of a line agrees with the model's; True: on the mirror."""
    fast = fast_errors.read_error(raw)
    try:
        model = ErrorEvent.model_validate_json(raw)
    except ValidationError:
        assert fast is None
        return False
    if fast is not None:
        assert fast == model
        assert fast.model_dump_json() == model.model_dump_json()
    return fast is not None


def test_the_attach_step_reads_lines_on_the_mirror_as_the_model_reads_them() -> None:
    lines = [raw for kind, raw in corpus() if kind == "error"]
    read = [assert_read_as_the_model_reads(raw) for raw in lines]
    assert any(read) and not all(read)  # some on the mirror, some left to the model
    assert all(assert_read_as_the_model_reads(raw) for raw in simulated())


FRAME = {"module": "m", "function": "f", "filename": "m.py", "lineno": 3, "in_app": True}


@pytest.mark.parametrize(
    "item",
    [
        FRAME,
        {**FRAME, "in_app": False, "lineno": 0},
        {**FRAME, "lineno": "3"},
        {**FRAME, "lineno": True},
        {**FRAME, "lineno": 3.0},
        {**FRAME, "in_app": 1},
        {**FRAME, "module": None},
        {k: v for k, v in FRAME.items() if k != "filename"},
        {**{k: v for k, v in FRAME.items() if k != "filename"}, "file": "m.py"},
        {**FRAME, "extra": 1},
        {**FRAME, "lineno": -1},
        [],
    ],
)
def test_a_chains_frame_reads_as_the_model_reads_it(item: object) -> None:
    try:
        model = Frame.model_validate(item)
    except ValidationError:
        with pytest.raises(ValidationError):
            fast_errors.frame_of(item)
        return
    assert fast_errors.frame_of(item) == model
