"""A bounded, file-backed queue of batch messages (the disk spill).

Only the SDK's sender thread calls it. What it stores is exactly what the sender hands
to Kafka: one record per NDJSON batch message (topic, key, value, event count, kind).

Layout of ``<spill_dir>/<slot>/``:
- ``lock``: held with ``flock`` by the one process using the slot. A process takes the
  first slot no live process holds, so a restarted app replays what a dead one left, and
  the workers of a pre-fork server each get a slot of their own; :func:`take` and
  :func:`others` let a process adopt the slots of processes that are gone.
- ``<16-digit number>.seg``: segments, appended in order. A process appends only to the
  segment it created, so a tail torn by a killed process is never written after.
- ``ack``: ``<segment> <offset>``: everything before it was acknowledged by the broker.

A record is a 16-byte header (magic, payload length, event count, CRC-32 of the payload)
and the payload. On open, each segment is read once: the records before the first one
that is short or fails its checksum are replayed; the rest of that segment is the torn
tail, counted (``torn_records``, ``torn_bytes``) and skipped.

Bounded: :meth:`Spill.append` refuses a record that would take the segment files past
``max_bytes`` (the caller drops the newest and counts it). Acknowledged segments are
deleted; when everything is acknowledged the files are removed altogether.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"SRS1"
HEADER = struct.Struct(">4sIII")  # magic, payload length, events, crc32(payload)
MAX_SLOTS = 64
SUFFIX = ".seg"

#: (segment number, byte offset in it)
Position = tuple[int, int]


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    count: int
    kind: str


def encode(record: Record) -> bytes:
    topic, kind = record.topic.encode(), record.kind.encode()
    payload = b"".join(
        (
            struct.pack(">H", len(topic)),
            topic,
            struct.pack(">B", len(kind)),
            kind,
            struct.pack(">I", len(record.key)),
            record.key,
            record.value,
        )
    )
    return HEADER.pack(MAGIC, len(payload), record.count, zlib.crc32(payload)) + payload


def decode(payload: bytes, count: int) -> Record:
    (n,) = struct.unpack_from(">H", payload, 0)
    topic, at = payload[2 : 2 + n].decode(), 2 + n
    kind, at = payload[at + 1 : at + 1 + payload[at]].decode(), at + 1 + payload[at]
    (k,) = struct.unpack_from(">I", payload, at)
    return Record(topic, payload[at + 4 : at + 4 + k], payload[at + 4 + k :], count, kind)


def scan(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """``(start, end, events)`` of each whole record, and where the readable part ends."""
    records: list[tuple[int, int, int]] = []
    at = 0
    while at + HEADER.size <= len(data):
        magic, length, count, crc = HEADER.unpack_from(data, at)
        end = at + HEADER.size + length
        if magic != MAGIC or end > len(data) or zlib.crc32(data[at + HEADER.size : end]) != crc:
            break
        records.append((at, end, count))
        at = end
    return records, at


@dataclass
class _Segment:
    path: Path
    end: int  # readable end (the file's size for the segment this process writes)


class Spill:
    """One slot directory, locked by this process (see :func:`open_slot`)."""

    def __init__(self, directory: Path, lock_fd: int, max_bytes: int, segment_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._lock_fd = lock_fd
        self._segments: dict[int, _Segment] = {}
        self.bytes = 0  # size of the segment files
        self.events = 0  # events not yet acknowledged
        self.torn_records = 0
        self.torn_bytes = 0
        self._ack: Position = self._read_ack()
        self._load()
        self.cursor: Position = self._ack if self._ack[0] in self._segments else self._first()
        self._write_seq = max(self._segments, default=self._ack[0]) + 1
        self._write_fd: int | None = None
        self._read: tuple[int, int] | None = None  # (segment, fd)

    # -- open ------------------------------------------------------------------------------
    def _read_ack(self) -> Position:
        try:
            seq, offset = (self.directory / "ack").read_text().split()
            return int(seq), int(offset)
        except (OSError, ValueError):
            return 0, 0

    def _load(self) -> None:
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            seq = int(path.stem) if path.stem.isdigit() else -1
            if seq < self._ack[0]:
                path.unlink(missing_ok=True)  # acknowledged before the last process ended
                continue
            data = path.read_bytes()
            records, end = scan(data)
            if end < len(data):
                self.torn_records += 1
                self.torn_bytes += len(data) - end
            skip = self._ack[1] if seq == self._ack[0] else 0
            self.events += sum(count for start, _, count in records if start >= skip)
            self.bytes += len(data)
            self._segments[seq] = _Segment(path, end)

    def _first(self) -> Position:
        return (min(self._segments), 0) if self._segments else self._ack

    # -- write -----------------------------------------------------------------------------
    def append(self, record: Record) -> bool:
        """Store ``record`` after every other; False (nothing written) when it does not fit.
        Raises OSError when the disk refuses the write (nothing is left half-written)."""
        data = encode(record)
        if self.bytes + len(data) > self.max_bytes:
            return False
        segment, fd = self._segments.get(self._write_seq), self._write_fd
        if segment is not None and segment.end and segment.end + len(data) > self._segment_bytes:
            self._roll()
            segment = None
        if segment is None or fd is None:
            segment, fd = self._create()
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write: {written} of {len(data)} bytes")
        except OSError:
            os.ftruncate(fd, segment.end)
            raise
        segment.end += len(data)
        self.bytes += len(data)
        self.events += record.count
        return True

    def _create(self) -> tuple[_Segment, int]:
        path = self.directory / f"{self._write_seq:016d}{SUFFIX}"
        fd = self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        segment = self._segments[self._write_seq] = _Segment(path, 0)
        return segment, fd

    def _roll(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        self._write_seq += 1

    # -- read ------------------------------------------------------------------------------
    def read(self, max_records: int, max_bytes: int) -> list[tuple[Record, Position]]:
        """Records from the cursor on (the cursor does not move), each with the position
        after it; at least one when any is left, even if larger than ``max_bytes``."""
        out: list[tuple[Record, Position]] = []
        seq, offset = self.cursor
        size = 0
        while len(out) < max_records and (not out or size < max_bytes):
            segment = self._segments.get(seq)
            if segment is None or offset >= segment.end:
                later = [s for s in self._segments if s > seq]
                if not later:
                    break
                seq, offset = min(later), 0
                continue
            fd = self._reader(seq, segment)
            _, length, count, _ = HEADER.unpack(os.pread(fd, HEADER.size, offset))
            payload = os.pread(fd, length, offset + HEADER.size)
            offset += HEADER.size + length
            size += length
            out.append((decode(payload, count), (seq, offset)))
        return out

    def _reader(self, seq: int, segment: _Segment) -> int:
        if self._read is not None and self._read[0] == seq:
            return self._read[1]
        if self._read is not None:
            os.close(self._read[1])
        self._read = (seq, os.open(segment.path, os.O_RDONLY))
        return self._read[1]

    # -- acknowledge -----------------------------------------------------------------------
    def acknowledge(self, through: Position, events: int) -> None:
        """Everything before ``through`` is acknowledged: drop what it completes."""
        self._ack = through
        self.events = max(self.events - events, 0)
        seq, offset = through
        done = [
            s for s, seg in self._segments.items() if s < seq or (s == seq and offset >= seg.end)
        ]
        if self._write_seq in done and self.events == 0 and (seq, offset) >= self.cursor:
            self._roll()  # all delivered: start afresh, no file left behind
        for s in done:
            if s != self._write_seq:
                self._delete(s)
        self._save_ack()

    def _delete(self, seq: int) -> None:
        segment = self._segments.pop(seq)
        if self._read is not None and self._read[0] == seq:
            os.close(self._read[1])
            self._read = None
        self.bytes -= segment.end if seq == self._write_seq else _size(segment.path)
        segment.path.unlink(missing_ok=True)

    def _save_ack(self) -> None:
        tmp = self.directory / "ack.tmp"
        tmp.write_text(f"{self._ack[0]} {self._ack[1]}\n")
        os.replace(tmp, self.directory / "ack")

    # -- close -----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the files and the slot (the lock goes with the last descriptor)."""
        self.forget()

    def forget(self) -> None:
        """Close this process's descriptors (in a forked child: the parent keeps its lock)."""
        fds = [self._write_fd, self._lock_fd, self._read[1] if self._read else None]
        self._write_fd, self._read = None, None
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def open_slot(root: str | Path, max_bytes: int, segment_bytes: int | None = None) -> Spill | None:
    """The first slot under ``root`` no other process holds; None when all are held.
    Raises OSError when the directory cannot be created or read."""
    for slot in range(MAX_SLOTS):
        directory = Path(root) / str(slot)
        directory.mkdir(parents=True, exist_ok=True)
        taken = take(directory, max_bytes, segment_bytes)
        if taken is not None:
            return taken
    return None


def take(directory: Path, max_bytes: int, segment_bytes: int | None = None) -> Spill | None:
    """The slot ``directory`` when no other process holds it, else None."""
    import fcntl

    seg = segment_bytes or min(max(max_bytes // 16, 64 * 1024), 16 * 1024 * 1024)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        return Spill(directory, fd, max_bytes, seg)
    except BaseException:
        os.close(fd)
        raise


def others(root: str | Path, own: Path) -> list[Path]:
    """Slots under ``root`` other than ``own`` that hold segments (whoever holds them)."""
    return [
        d
        for d in sorted(Path(root).iterdir())
        if d.name.isdigit() and d != own and any(d.glob("*" + SUFFIX))
    ]
