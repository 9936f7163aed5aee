"""The disk spill's files: records come back in order across segments and processes, a
torn tail costs only itself, the bound holds, and one process holds a slot at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from shiftright.spill import HEADER, Record, Spill, encode, open_slot


def record(n: int, size: int = 40) -> Record:
    value = b"\n".join(f'{{"n":{n},"i":{i}}}'.encode() for i in range(3)).ljust(size, b" ")
    return Record("events.usage.v1", f"app|env|{n}".encode(), value, 3, "usage")


def slot(root: Path, max_bytes: int = 1 << 20, segment_bytes: int = 1024) -> Spill:
    opened = open_slot(root, max_bytes, segment_bytes)
    assert opened is not None
    return opened


def drain(spill: Spill) -> list[Record]:
    """Read everything from the cursor on and acknowledge it, as the replay does."""
    out: list[Record] = []
    while batch := spill.read(7, 1 << 20):
        out.extend(r for r, _ in batch)
        spill.cursor = batch[-1][1]
        spill.acknowledge(batch[-1][1], sum(r.count for r, _ in batch))
    return out


def test_records_come_back_in_order_across_segments_and_leave_no_file(tmp_path: Path) -> None:
    spill = slot(tmp_path)
    sent = [record(n) for n in range(100)]
    for r in sent:
        assert spill.append(r)
    assert len(list((tmp_path / "0").glob("*.seg"))) > 3, "rolled into several segments"
    assert spill.events == 300
    assert drain(spill) == sent
    assert spill.events == 0 and spill.bytes == 0
    assert not list((tmp_path / "0").glob("*.seg"))
    spill.close()


def test_the_next_process_resumes_after_what_the_broker_acknowledged(tmp_path: Path) -> None:
    spill = slot(tmp_path)
    sent = [record(n) for n in range(30)]
    for r in sent:
        spill.append(r)
    batch = spill.read(10, 1 << 20)
    spill.cursor = batch[-1][1]
    spill.acknowledge(batch[-1][1], 30)  # the first ten acknowledged
    spill.read(5, 1 << 20)  # five more sent, never acknowledged
    spill.close()

    again = slot(tmp_path)
    assert again.events == 60 and again.directory == tmp_path / "0"
    assert drain(again) == sent[10:]
    again.close()


def test_a_torn_tail_is_counted_and_skipped_and_the_rest_delivered(tmp_path: Path) -> None:
    spill = slot(tmp_path, segment_bytes=1 << 20)
    for n in range(5):
        spill.append(record(n))
    spill.close()
    [segment] = (tmp_path / "0").glob("*.seg")
    whole = segment.stat().st_size
    cut = whole - len(encode(record(4))) + HEADER.size + 3  # killed inside the last record
    os.truncate(segment, cut)

    again = slot(tmp_path, segment_bytes=1 << 20)
    assert (again.torn_records, again.torn_bytes) == (1, cut - len(encode(record(0))) * 4)
    again.append(record(99))  # written after the torn tail, in a segment of its own
    assert drain(again) == [record(n) for n in range(4)] + [record(99)]
    again.close()


def test_a_corrupt_record_ends_its_segment_not_the_spill(tmp_path: Path) -> None:
    spill = slot(tmp_path, segment_bytes=len(encode(record(0))) * 3)
    for n in range(6):  # two segments of three
        spill.append(record(n))
    spill.close()
    first = sorted((tmp_path / "0").glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[len(encode(record(0))) + HEADER.size + 5] ^= 0xFF  # a flipped bit in record 1
    first.write_bytes(bytes(data))

    again = slot(tmp_path)
    assert again.torn_records == 1
    assert drain(again) == [record(0), record(3), record(4), record(5)]
    again.close()


def test_garbage_in_place_of_a_segment_never_raises(tmp_path: Path) -> None:
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / f"{1:016d}.seg").write_bytes(os.urandom(5000))
    (tmp_path / "0" / "ack").write_text("not a position")
    spill = slot(tmp_path)
    assert spill.events == 0 and spill.torn_records == 1
    assert spill.read(10, 1 << 20) == []
    spill.close()


def test_the_bound_refuses_the_newest_until_the_oldest_are_acknowledged(tmp_path: Path) -> None:
    size = len(encode(record(0)))
    spill = slot(tmp_path, max_bytes=size * 10, segment_bytes=size * 2)
    taken = [n for n in range(15) if spill.append(record(n))]
    assert taken == list(range(10))  # the newest five refused, the oldest kept
    assert spill.bytes <= spill.max_bytes
    batch = spill.read(4, 1 << 20)
    spill.cursor = batch[-1][1]
    spill.acknowledge(batch[-1][1], 12)  # two whole segments acknowledged and deleted
    assert spill.bytes == size * 6
    assert spill.append(record(20)) and spill.append(record(21))
    assert [r for r in drain(spill)] == [record(n) for n in range(4, 10)] + [record(20), record(21)]
    spill.close()


def test_a_slot_held_by_a_live_process_is_not_taken_and_a_dead_ones_is(tmp_path: Path) -> None:
    """A child process writes to slot 0 and is killed -9 while holding it."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(Path(__file__).parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "spilled"
        other = slot(tmp_path)
        assert other.directory == tmp_path / "1", "slot 0 is held by the live child"
        other.close()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    successor = slot(tmp_path)
    assert successor.directory == tmp_path / "0"
    assert drain(successor) == [record(n) for n in range(3)]
    successor.close()


_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_spill import record, slot
spill = slot(Path(sys.argv[1]))
for n in range(3):
    spill.append(record(n))
print("spilled", flush=True)
sys.stdin.read()  # holds the slot until killed
"""


def test_the_lock_is_released_when_the_spill_closes(tmp_path: Path) -> None:
    first = slot(tmp_path)
    first.close()
    second = slot(tmp_path)
    assert second.directory == tmp_path / "0"
    second.close()


@pytest.mark.parametrize("count", [0, 1, 1000])
def test_a_record_keeps_every_field(count: int) -> None:
    from shiftright.spill import decode, scan

    r = Record("ns.events.error.v1", b"", b"x" * count, count, "error")
    data = encode(r)
    assert scan(data) == ([(0, len(data), count)], len(data))
    assert decode(data[HEADER.size :], count) == r
