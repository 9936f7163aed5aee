"""Between the sender thread and the transport when the disk spill is on (``spill_dir``).

Contract (every method but :meth:`Spiller.give_back` runs on the sender thread):
- **Direct while the broker answers.** Batch messages go to the transport exactly as
  without a spill; the spill costs no disk I/O.
- **Engaged when the broker is away.** When the transport refuses a message (its buffer
  is full), or the broker has acknowledged nothing for ``spill_after`` seconds while
  messages wait, the messages the transport still queues are purged from it and written
  to the spill, then every new batch message goes to the spill's tail: order is kept,
  and what waits for the broker is on disk, not only in the process's memory.
- **Replay in order, removal after acknowledgement.** While engaged, a window of records
  from the spill's head is handed to the transport; the spill forgets a record only when
  the broker acknowledged it and every record before it (at least once). When the spill
  is empty and nothing waits, messages go direct again.
- **Full: the newest is dropped**, counted (``spill_full``) and logged once per episode.
- **Close** purges what the transport still queues into the spill, so the next process
  started with the same directory sends it.
- **Adoption.** At start, and every ``ADOPT_EVERY`` seconds while idle, records of slots
  no live process holds are moved into this process's slot (then sent like its own).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Protocol

from shiftright import spill as spill_files
from shiftright.config import Config
from shiftright.ratelog import RateLimitedLog
from shiftright.spill import Position, Record, Spill
from shiftright.transport import NDJSON_HEADERS, PURGED, Transport

WINDOW_RECORDS = 256
WINDOW_BYTES = 8 * 1024 * 1024
#: How often an idle spill looks for slots left by processes that are gone.
ADOPT_EVERY = 30.0


class Tally(Protocol):
    """Where the spiller counts (the client's counters)."""

    def count_sent(self, count: int) -> None: ...

    def count_delivery(self, count: int, kind: str, error: str | None) -> None: ...

    def count_drop(self, reason: str, count: int) -> None: ...


class _Sent:
    """A replayed record the broker has not acknowledged yet."""

    __slots__ = ("count", "done", "end", "size")

    def __init__(self, end: Position, count: int, size: int) -> None:
        self.end, self.count, self.size, self.done = end, count, size, False


class Spiller:
    def __init__(self, config: Config, transport: Transport, tally: Tally) -> None:
        self._config = config
        self._transport = transport
        self._tally = tally
        self._log = RateLimitedLog(logging.getLogger("shiftright.spill"), every=60.0)
        self._spill: Spill | None = None
        self._tripped = False
        self._full = False  # logged once per episode
        self._returned: deque[Record] = deque()  # purged from the transport, not yet on disk
        self._sent: deque[_Sent] = deque()
        self._sent_bytes = 0
        self._progress = time.monotonic()
        self._adopt_at = 0.0
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Take a slot of the directory; without one the SDK runs as if the spill were off."""
        try:
            self._spill = spill_files.open_slot(
                self._config.spill_dir, self._config.spill_max_bytes
            )
        except Exception as exc:
            self._log.warning("spill_unavailable", "open", "%s: %r", self._config.spill_dir, exc)
            return
        if self._spill is None:
            self._log.warning(
                "spill_unavailable",
                "open",
                "every slot of %s is held by another process",
                self._config.spill_dir,
            )
            return
        self._report_torn(self._spill)
        self._adopt()

    def _report_torn(self, spill: Spill) -> None:
        if spill.torn_records:
            self._log.warning(
                "spill_tail_skipped",
                "torn",
                "%d torn record(s), %d bytes, in %s (a process was killed mid-write)",
                spill.torn_records,
                spill.torn_bytes,
                spill.directory,
            )

    def _adopt(self) -> None:
        """Move the records of slots no live process holds into ours, oldest first (a
        pre-fork server that restarts with fewer workers leaves such slots)."""
        own = self._spill
        assert own is not None
        self._adopt_at = time.monotonic() + ADOPT_EVERY
        try:
            for directory in spill_files.others(self._config.spill_dir, own.directory):
                orphan = spill_files.take(directory, self._config.spill_max_bytes)
                if orphan is not None:
                    self._report_torn(orphan)
                    try:
                        self._move(orphan, own)
                    finally:
                        orphan.close()
        except Exception as exc:  # another slot's trouble must not stop this one
            self._log.warning("spill_adopt_failed", "adopt", "%r", exc)

    def _move(self, orphan: Spill, own: Spill) -> None:
        own.torn_records += orphan.torn_records
        own.torn_bytes += orphan.torn_bytes
        while batch := orphan.read(64, WINDOW_BYTES):
            moved: Position | None = None
            events = 0
            for record, end in batch:
                if not own.append(record):
                    break  # ours is full: the rest stays where it is
                moved, events = end, events + record.count
            if moved is None:
                return
            orphan.cursor = moved
            orphan.acknowledge(moved, events)
            if moved != batch[-1][1]:
                return

    def close(self) -> None:
        """Purge what the transport still queues into the spill, then release the slot."""
        if self._spill is None:
            return
        self._purge_transport()
        self._take_returned()
        self._commit()
        self._spill.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's descriptors, keep the parent's lock."""
        if self._spill is not None:
            self._spill.forget()

    # -- state -----------------------------------------------------------------------------
    @property
    def engaged(self) -> bool:
        spill = self._spill
        return spill is not None and (self._tripped or spill.events > 0 or bool(self._returned))

    def pending(self) -> int:
        """Events on disk or purged from the transport, not yet acknowledged."""
        spill = self._spill
        with self._lock:  # the app thread asks (flush) while the sender moves records
            returned = sum(r.count for r in self._returned)
        return (spill.events if spill is not None else 0) + returned

    def stats(self) -> dict[str, Any]:
        spill = self._spill
        return {
            "open": spill is not None,
            "directory": str(spill.directory) if spill is not None else "",
            "engaged": self.engaged,
            "events": self.pending(),
            "bytes": spill.bytes if spill is not None else 0,
            "max_bytes": self._config.spill_max_bytes,
            "torn_records": spill.torn_records if spill is not None else 0,
            "torn_bytes": spill.torn_bytes if spill is not None else 0,
        }

    # -- direct messages the transport gives back -------------------------------------------
    def give_back(self, record: Record) -> None:
        """A direct message purged from the transport (any thread); spilled before new ones."""
        with self._lock:
            self._returned.append(record)

    def trip(self) -> bool:
        """The broker is away: move what the transport queues to disk. False without a spill."""
        if self._spill is None:
            return False
        self._tripped = True
        self._purge_transport()
        self._take_returned()
        return True

    def _purge_transport(self) -> None:
        purge = getattr(self._transport, "purge_queued", None)  # optional for custom transports
        if purge is not None:
            purge()

    def _take_returned(self) -> None:
        while self._returned:
            with self._lock:
                record = self._returned.popleft()
            self._store(record)

    # -- new messages ----------------------------------------------------------------------
    def append(self, record: Record) -> None:
        self._take_returned()
        self._store(record)

    def _store(self, record: Record) -> None:
        spill = self._spill
        if spill is None:
            self._tally.count_drop("transport_full", record.count)
            return
        try:
            stored = spill.append(record)
        except OSError as exc:
            self._tally.count_drop("spill_error", record.count)
            self._log.warning("spill_write_failed", "write", "%s: %r", spill.directory, exc)
            return
        if stored:
            self._full = False
            return
        self._tally.count_drop("spill_full", record.count)
        if not self._full:
            self._full = True
            logging.getLogger("shiftright.spill").warning(
                "spill_full: %s holds %d bytes (max %d); new events are dropped until the"
                " broker takes the oldest",
                spill.directory,
                spill.bytes,
                spill.max_bytes,
            )

    # -- replay ----------------------------------------------------------------------------
    def tick(self, direct_stalled: bool) -> None:
        """Once per sender round: engage on a stall, forget what was acknowledged, replay."""
        if self._spill is None:
            return
        if not self._tripped and direct_stalled:
            self.trip()
        self._take_returned()
        self._commit()
        if not self.engaged:
            if time.monotonic() >= self._adopt_at:
                self._adopt()
            return
        if not self._replay_stalled():
            self._replay()
        if not direct_stalled and not self._sent and self.pending() == 0:
            self._tripped = False

    def _replay_stalled(self) -> bool:
        return bool(self._sent) and time.monotonic() - self._progress > self._config.spill_after

    def _replay(self) -> None:
        spill = self._spill
        assert spill is not None
        room = WINDOW_RECORDS - len(self._sent)
        if room <= 0 or self._sent_bytes >= WINDOW_BYTES:
            return
        if not self._sent:
            self._progress = time.monotonic()
        for record, end in spill.read(room, WINDOW_BYTES - self._sent_bytes):
            if not self._send(record, end):
                return
            spill.cursor = end

    def _send(self, record: Record, end: Position) -> bool:
        sent = _Sent(end, record.count, len(record.value))

        def delivered(error: str | None) -> None:
            if error == PURGED:
                return  # still on disk: the next process sends it
            sent.done = True
            self._progress = time.monotonic()
            self._tally.count_delivery(record.count, record.kind, error)

        self._sent.append(sent)
        self._sent_bytes += sent.size
        try:
            self._transport.produce(
                record.topic, record.value, record.key, NDJSON_HEADERS, delivered
            )
        except BufferError:
            self._forget_last()
            return False
        except Exception as exc:
            self._forget_last()
            self._log.warning("replay_failed", type(exc).__name__, "%r", exc)
            return False
        self._tally.count_sent(record.count)
        return True

    def _forget_last(self) -> None:
        sent = self._sent.pop()
        self._sent_bytes -= sent.size

    def _commit(self) -> None:
        spill = self._spill
        through: Position | None = None
        events = 0
        while self._sent and self._sent[0].done:
            sent = self._sent.popleft()
            self._sent_bytes -= sent.size
            through, events = sent.end, events + sent.count
        if spill is not None and through is not None:
            try:
                spill.acknowledge(through, events)
            except OSError as exc:
                self._log.warning("spill_ack_failed", "ack", "%s: %r", spill.directory, exc)
