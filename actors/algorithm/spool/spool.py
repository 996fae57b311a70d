"""A worker's spool: every decision is kept on its local disk, fsync'd, before it is printed, and
shipped to the Ledger from there.

* **Keep, then print.** :meth:`Spool.append` takes a decision's record and returns at once; records are
  written together (*group commit*: those of ``group_wait`` seconds, or all that came while the previous
  write was being fsync'd) in one ``write`` and one ``fdatasync``, in a thread of the spool's own, and
  only then handed to ``on_durable`` (which prints them), in order. A worker killed at any moment has
  printed nothing that is not on its disk.
* **Shipped from the disk.** :meth:`read` gives the committed records not yet handed out, oldest first
  (the Ledger client sends them in batches); :meth:`acknowledged` takes the seqs the Ledger committed.
  The newest seq below which all are acknowledged (the *watermark*) is written into the spool with the
  next group, as a hint for a restart.
* **Bounded.** Records go into segment files of about ``segment_bytes``; a segment is removed once
  every decision in it is acknowledged and it holds none of the newest tick (a worker restarted within
  that tick must know what it decided, whether or not the Ledger answers). At ``max_bytes`` of files
  (with what waits to be written) the spool is *full*: :attr:`paused` says so, the caller stops
  starting decisions (one log line, a counter), and those already made wait in memory -- unprinted --
  until acknowledgements free a segment. Nothing is dropped.
* **Recovered.** :meth:`open` takes the directory's lock, reads every segment back (a torn last record
  is cut off: it was never printed), and returns what they hold: each pair's newest decision (so a
  restarted worker never decides a (pair, run, tick) again) and the records never acknowledged, which
  :meth:`read` then gives first (the Ledger counts a re-delivered decision as a duplicate, never a
  second row).
* **A failing disk** (full filesystem, I/O error) pauses too: the group is written again in a new
  segment after a growing wait, logged and counted; nothing is printed meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, TypeVar

from actors.algorithm.spool.disk import Disk
from actors.algorithm.spool.records import MAGIC, Kind, Scan, frame, parse
from transport.logs import RateLimitedLog

log = logging.getLogger("algorithm")
T = TypeVar("T")

GROUP_WAIT: Final = 0.002  # seconds a lone decision waits for others to share its write and fsync
GROUP_MAX_BYTES: Final = 1 << 20  # one write at most (a group larger than this waits for the next)
READ_BYTES: Final = 256 * 1024  # one read of committed records for the Ledger
FRESH_MAX: Final = 8192  # committed records handed to the reader from memory, not yet read
RETRY_MIN: Final = 0.1  # seconds before writing again after a disk error; doubles up to RETRY_MAX
RETRY_MAX: Final = 2.0
LOCK_TIMEOUT: Final = 10.0  # seconds to wait for the directory's lock (a killed predecessor releases it)
SEGMENT_MIN: Final = 64 * 1024
SEGMENT_MAX: Final = 16 << 20


def segment_size(max_bytes: int) -> int:
    """A segment's size for a spool of ``max_bytes``: a sixteenth of it (removal frees space in steps
    that small), within 64 KiB..16 MiB."""
    return max(SEGMENT_MIN, min(SEGMENT_MAX, max_bytes // 16))


@dataclass(slots=True)
class Segment:
    """One segment file, as the event loop knows it (sizes count durable bytes only)."""

    number: int
    size: int
    decisions: int = 0
    last_seq: int = 0  # of its newest decision (0: none)
    newest: tuple[float, int] = (0.0, -1)  # newest (run, tick) decided in it
    closed: bool = False  # no longer appended to


class Spool(Generic[T]):
    def __init__(self, directory: Path, *, max_bytes: int, on_durable: Callable[[list[T]], None],
                 segment_bytes: int | None = None, group_wait: float = GROUP_WAIT, disk: Disk | None = None,
                 clock: Callable[[], float] = time.monotonic, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.directory = directory
        self._lock_timeout = lock_timeout
        self._max = max_bytes
        self._segment_bytes = segment_bytes or segment_size(max_bytes)
        if self._max < 2 * self._segment_bytes:
            raise ValueError(f"a spool of {max_bytes} bytes cannot hold two segments of {self._segment_bytes}")
        self._on_durable = on_durable
        self._group_wait = group_wait
        self._disk = disk or Disk(directory)
        self._clock = clock
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spool-write")
        self._reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spool-read")
        self._log = RateLimitedLog(log)
        self._segments: collections.deque[Segment] = collections.deque()  # oldest first
        self._next_number = 1
        self._next_seq = 1
        self._bytes = 0  # durable bytes in our segment files
        # Appended, not yet durable: (seq, framed record, record, tag, run, tick). Bounded by the decisions
        # the caller has in flight: it stops starting new ones while the spool is paused.
        self._pending: collections.deque[tuple[int, bytes, bytes, T, float, int]] = collections.deque()
        self._pending_bytes = 0
        self._committing = False
        self._scheduled = False
        self._opened = False
        self._closing = False
        self._broken = True  # the next commit starts a new segment (at start, and after a disk error)
        self._failing = False  # the last write failed (paused until one succeeds)
        self._retry_at = 0.0
        self._backoff = 0.0
        self._idle = asyncio.Event()  # nothing pending or being written
        self._idle.set()
        self._readable = asyncio.Event()  # committed records not yet handed out may exist
        # Shipping: the reader's place, the seqs handed out and not yet under the watermark.
        self._read_segment: Segment | None = None
        self._read_offset = 0
        self._handed: collections.deque[int] = collections.deque()
        self._fresh: collections.deque[tuple[int, bytes]] = collections.deque()  # committed, not read back: at
        # most FRESH_MAX (seq, record)s, all newer than anything read from the disk and older than what follows
        self._reading = False  # a read of the disk is in flight
        self._acked: set[int] = set()
        self._last_handed = 0
        self._watermark = 0  # every decision up to this seq is acknowledged
        self._watermark_written = 0
        self._backlog = 0  # committed decisions not yet under the watermark
        self._newest_tick: tuple[float, int] = (0.0, -1)
        self._removing = False
        self._paused_since: float | None = None
        self._pause_reason = ""
        self.counters: dict[str, int] = {
            "spool_bytes": 0, "spool_decisions": 0, "spool_backlog": 0, "spool_segments": 0, "spool_waiting": 0,
            "spool_commits": 0, "spool_committed": 0, "spool_full": 0, "spool_full_pauses": 0, "spool_errors": 0,
            "spool_damaged_bytes": 0, "spool_unreadable": 0, "spool_recovered": 0, "spool_redelivered": 0,
            "spool_reclaimed": 0, "spool_paused_ms": 0,
        }

    # --- opening: the lock and what the files hold ------------------------------------------------

    async def open(self) -> Scan:
        """Take the directory, read what an earlier run left; from then on records are written."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._disk.lock, self._lock_timeout)
        scan = await loop.run_in_executor(self._writer, self._disk.scan)
        for found in scan.segments:
            if found.foreign:
                self._log.warning("foreign", "spool %s: %s is not a spool segment: left alone, not counted",
                                  self.directory, found.number)
                continue
            self._segments.append(Segment(found.number, found.size, found.decisions, found.last_seq, found.newest,
                                          closed=True))
            self._bytes += found.size
            self.counters["spool_damaged_bytes"] += found.damaged_bytes
            if found.damaged_bytes:
                log.warning("spool %s: segment %d ends in a torn or damaged record: %d byte(s) dropped (never "
                            "printed)", self.directory, found.number, found.damaged_bytes)
        self._next_number = max((s.number for s in scan.segments), default=0) + 1
        self._next_seq = scan.last_seq + 1
        self._watermark = self._watermark_written = self._last_handed = scan.acked
        self._backlog = scan.unacked
        self.counters["spool_unreadable"] += scan.unreadable
        self.counters["spool_recovered"] = sum(s.decisions for s in self._segments)
        self.counters["spool_redelivered"] = scan.unacked
        if self._segments:
            self._read_segment, self._read_offset = self._segments[0], len(MAGIC)
            log.info("spool %s: %d decision(s) recovered, %d not acknowledged by the Ledger: delivered again",
                     self.directory, self.counters["spool_recovered"], scan.unacked)
        self._opened = True
        self._update()
        self._readable.set()
        self._commit_soon()
        return scan

    # --- keeping ----------------------------------------------------------------------------------

    def append(self, record: bytes, tag: T, run: float, tick: int) -> None:
        """Keep ``record`` (a decision for ``tick`` of ``run``); ``tag`` goes to ``on_durable`` once it is
        on disk. Never blocks, never refuses: the caller stops starting decisions while :attr:`paused`."""
        framed = frame(self._next_seq, Kind.DECISION, record)
        self._pending.append((self._next_seq, framed, record, tag, run, tick))
        self._next_seq += 1
        self._pending_bytes += len(framed)
        self._idle.clear()
        self._commit_soon()

    def _commit_soon(self) -> None:
        if not self._scheduled and not self._committing and self._opened and self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_later(max(self._group_wait, self._retry_at - self._clock()),
                                                  self._start_commit)

    def _start_commit(self) -> None:
        self._scheduled = False
        if self._committing or not self._opened or not self._pending:
            self._update()
            return
        if self._clock() < self._retry_at:
            self._commit_soon()
            return
        ack = frame(self._watermark, Kind.ACKED) if self._watermark > self._watermark_written else b""
        active = self._segments[-1] if self._segments and not self._segments[-1].closed else None
        first = len(self._pending[0][1])
        # A group never takes a segment past segment_bytes (a lone record larger than that goes alone):
        # removal works by whole segments, so the active one must never hold the whole bound.
        roll = self._broken or active is None or active.size + len(ack) + first > self._segment_bytes
        overhead = len(MAGIC) + len(ack) if roll else len(ack)
        used = len(MAGIC) + len(ack) if roll or active is None else active.size + len(ack)
        room = min(self._max - self._bytes - overhead, GROUP_MAX_BYTES, max(self._segment_bytes - used, first))
        taken, size = 0, 0
        for _, framed, _, _, _, _ in self._pending:
            if size + len(framed) > room:
                break
            taken += 1
            size += len(framed)
        if not taken:
            self._update()  # full: waits for a segment to be removed
            return
        group = [self._pending.popleft() for _ in range(taken)]
        self._pending_bytes -= size
        self._committing = True
        asyncio.get_running_loop().create_task(self._commit(group, ack, roll))

    async def _commit(self, group: list[tuple[int, bytes, bytes, T, float, int]], ack: bytes, roll: bool) -> None:
        loop = asyncio.get_running_loop()
        watermark = self._watermark if ack else self._watermark_written
        data = b"".join(framed for _, framed, _, _, _, _ in group)
        try:
            if roll:
                number = self._next_number
                size = await loop.run_in_executor(self._writer, self._disk.create, number, ack)
                self._next_number += 1
                if self._segments:
                    self._segments[-1].closed = True
                self._segments.append(Segment(number, size))
                self._bytes += size
                self._broken = False
                if self._read_segment is None:
                    self._read_segment, self._read_offset = self._segments[-1], size
                self._watermark_written = watermark
                ack = b""
            segment = self._segments[-1]
            await loop.run_in_executor(self._writer, self._disk.append, ack + data, segment.size)
        except OSError as exc:
            self._committing = False
            self._failed(group, exc)
            return
        self._committing = False
        self._failing = False
        written_at = segment.size
        segment.size += len(ack) + len(data)
        if (segment is self._read_segment and self._read_offset == written_at and not self._reading
                and len(self._fresh) + len(group) <= FRESH_MAX):
            # The reader has read everything before this write: it takes these from memory instead of
            # reading them back (the steady state); the disk is read after a restart or when it lags.
            self._fresh.extend((seq, record) for seq, _, record, _, _, _ in group)
            self._read_offset = segment.size
        self._bytes += len(ack) + len(data)
        self._watermark_written = watermark
        segment.decisions += len(group)
        segment.last_seq = group[-1][0]
        segment.newest = max(segment.newest, max((run, tick) for _, _, _, _, run, tick in group))
        self._backlog += len(group)
        self._backoff = 0.0
        self.counters["spool_commits"] += 1
        self.counters["spool_committed"] += len(group)
        self._readable.set()
        self._update()
        self._on_durable([tag for _, _, _, tag, _, _ in group])
        if self._pending:
            self._start_commit()  # those that came meanwhile waited long enough
        else:
            self._idle_if_done()

    def _failed(self, group: list[tuple[int, bytes, bytes, T, float, int]], exc: OSError) -> None:
        """Writing failed: put the group back, write it again in a new segment after a growing wait."""
        self._pending.extendleft(reversed(group))
        self._pending_bytes += sum(len(framed) for _, framed, _, _, _, _ in group)
        self._broken = True
        self._failing = True
        if self._segments:
            self._segments[-1].closed = True
        self._backoff = min(RETRY_MAX, max(RETRY_MIN, self._backoff * 2))
        self._retry_at = self._clock() + self._backoff
        self.counters["spool_errors"] += 1
        self._log.error("disk", "spool %s: cannot keep decisions (%s): repricing paused, %d decision(s) wait "
                        "unprinted; trying again in %.1fs", self.directory, exc, len(self._pending), self._backoff)
        self._update()
        self._commit_soon()

    def _idle_if_done(self) -> None:
        if not self._pending and not self._committing:
            self._idle.set()

    # --- the state the caller reads ---------------------------------------------------------------

    @property
    def paused(self) -> bool:
        """Whether new decisions must wait: the spool is full, or its disk is failing."""
        return bool(self._pause_reason)

    @property
    def backlog(self) -> int:
        """Decisions kept and not yet acknowledged by the Ledger (including those waiting to be written)."""
        return self._backlog + len(self._pending)

    def _update(self) -> None:
        """Counters, and the pause's start and end (one log line each)."""
        reason = ""
        if self._failing:
            reason = "its disk is failing"
        elif self._bytes + self._pending_bytes >= self._max:
            reason = "full"
        now = self._clock()
        if reason and not self._pause_reason:
            self._paused_since = now
            if reason == "full":
                self.counters["spool_full_pauses"] += 1
                log.warning("spool %s full (%d bytes, limit %d; %d decision(s) not acknowledged by the Ledger): "
                            "repricing paused until the Ledger acknowledges decisions", self.directory,
                            self._bytes, self._max, self.backlog)
        elif not reason and self._pause_reason:
            paused_for = now - (self._paused_since or now)
            self.counters["spool_paused_ms"] += int(paused_for * 1000)
            log.warning("spool %s has room again: repricing resumes after %.1fs paused", self.directory, paused_for)
            self._paused_since = None
        self._pause_reason = reason
        counters = self.counters
        counters["spool_full"] = int(reason == "full")
        counters["spool_bytes"] = self._bytes
        counters["spool_decisions"] = sum(s.decisions for s in self._segments)
        counters["spool_segments"] = len(self._segments)
        counters["spool_backlog"] = self.backlog
        counters["spool_waiting"] = len(self._pending)

    # --- shipping ---------------------------------------------------------------------------------

    @property
    def readable(self) -> bool:
        """Whether :meth:`read` may have records to give now."""
        segment = self._read_segment
        if self._fresh:
            return True
        if segment is None:
            return False
        return self._read_offset < segment.size or (segment.closed and segment is not self._segments[-1])

    async def wait_readable(self) -> None:
        while not self.readable:
            self._readable.clear()
            await self._readable.wait()

    async def read(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` committed decisions not handed out before, oldest first: (seq, record)."""
        loop = asyncio.get_running_loop()
        out: list[tuple[int, bytes]] = []
        fresh, floor = self._fresh, self._last_handed
        while fresh and len(out) < limit:
            seq, payload = fresh.popleft()
            if seq > floor:
                out.append((seq, payload))
                self._handed.append(seq)
                floor = seq
        self._last_handed = floor
        while len(out) < limit and not fresh and (segment := self._read_segment) is not None:
            if self._read_offset >= segment.size:
                if not segment.closed or segment is self._segments[-1]:
                    break
                self._read_segment = self._segments[self._segments.index(segment) + 1]
                self._read_offset = len(MAGIC)
                continue
            end = segment.size
            size = min(end - self._read_offset, READ_BYTES)
            self._reading = True
            try:
                data = await loop.run_in_executor(self._reader, self._disk.read, segment.number, self._read_offset,
                                                  size)
            finally:
                self._reading = False
            if segment is not self._read_segment:  # cannot happen: one reader at a time; be safe
                break
            parsed = parse(data, base=self._read_offset)
            if parsed.damaged and (len(data) >= end - self._read_offset or not parsed.records):
                # Committed bytes that do not read back (a read of READ_BYTES holds a whole record).
                self._unreadable(segment, end - parsed.end)
                self._read_offset = end
            else:
                self._read_offset = parsed.end  # a record cut by the read's size: read from it next time
            floor = self._last_handed
            for record in parsed.records:
                if len(out) == limit:  # the rest is read again next time, from this record on
                    self._read_offset = record.offset
                    break
                if record.kind == Kind.DECISION and record.seq > floor:
                    out.append((record.seq, record.payload))
                    self._handed.append(record.seq)
                    floor = record.seq
            self._last_handed = floor
        self._reclaim()
        return out

    def _unreadable(self, segment: Segment, size: int) -> None:
        self.counters["spool_damaged_bytes"] += size
        self._log.error("damaged", "spool %s: %d committed byte(s) of segment %d do not read back: skipped (the "
                        "decisions there cannot be delivered)", self.directory, size, segment.number)

    def acknowledged(self, seqs: Sequence[int]) -> None:
        """The Ledger committed the decisions ``seqs`` (each handed out by :meth:`read`)."""
        self._acked.update(seqs)
        handed, acked = self._handed, self._acked
        advanced = 0
        while handed and handed[0] in acked:
            seq = handed.popleft()
            acked.discard(seq)
            self._watermark = seq
            advanced += 1
        if advanced:
            self._backlog -= advanced
            self._reclaim()
            self._update()

    def know_tick(self, run: float, seq: int) -> None:
        """A tick arrived: segments holding only older ticks may go once acknowledged."""
        if (run, seq) > self._newest_tick:
            self._newest_tick = (run, seq)
            self._reclaim()

    def _reclaim(self) -> None:
        """Remove the oldest segments that are fully acknowledged and of older ticks, one at a time."""
        if self._removing or len(self._segments) < 2:
            return
        segment = self._segments[0]
        if (not segment.closed or segment.last_seq > self._watermark or segment.newest >= self._newest_tick
                or segment is self._read_segment):
            return
        self._removing = True
        asyncio.get_running_loop().create_task(self._remove(segment))

    async def _remove(self, segment: Segment) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._disk.remove, segment.number)
        except OSError as exc:
            self._log.error("remove", "spool %s: cannot remove segment %d: %s", self.directory, segment.number, exc)
            self._removing = False
            return
        self._removing = False
        self._segments.popleft()
        self._bytes -= segment.size
        self.counters["spool_reclaimed"] += 1
        self._update()
        self._commit_soon()  # decisions waiting for room
        self._reclaim()

    # --- stopping ---------------------------------------------------------------------------------

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bound on the drain, like asyncio.wait's
        """Write what waits now; True once nothing is left unwritten (within ``timeout`` seconds)."""
        self._start_commit_now()
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            self._log.warning("flush", "spool %s: %d decision(s) still not written after %.1fs: not printed",
                              self.directory, len(self._pending), timeout)
            return False
        return True

    def _start_commit_now(self) -> None:
        if not self._committing and self._opened and self._pending and self._clock() >= self._retry_at:
            self._start_commit()

    async def close(self) -> None:
        """Note the watermark for the next start, release the files and the lock."""
        loop = asyncio.get_running_loop()
        if self._opened and self._watermark > self._watermark_written and not self._broken and self._segments:
            try:
                record = frame(self._watermark, Kind.ACKED)
                await loop.run_in_executor(self._writer, self._disk.append, record, self._segments[-1].size)
                self._watermark_written = self._watermark
                self._segments[-1].size += len(record)
                self._bytes += len(record)
                self._update()
            except OSError as exc:
                self._log.warning("close", "spool %s: the acknowledged mark was not written (%s): the next start "
                                  "delivers some decisions again (counted as duplicates)", self.directory, exc)
        await loop.run_in_executor(self._writer, self._disk.close)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        self._opened = False
