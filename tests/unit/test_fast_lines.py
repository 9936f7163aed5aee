"""Reading a batch message's lines in one call gives what reading them one by one gives,
or declines; it never reads lines another way than the line-by-line fast path would."""

from __future__ import annotations

from datetime import timedelta

from shiftright_server.schemas import wire
from shiftright_server.schemas.fast_events import DECODERS, Accepted, accept
from shiftright_server.schemas.fast_lines import accept_lines

from tests.builders import encoded
from tests.unit.test_fast_events import LIMITS, NOW, NOW_MS, WINDOW, corpus

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
