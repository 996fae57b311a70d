"""The spool's bytes: segment files of framed records, and what a scan of them recovers. Pure: no I/O.

A segment file is ``MAGIC`` then records, each::

    length u32 | crc32 u32 | seq u64 | kind u8 | payload (length bytes)

little-endian; the CRC covers seq, kind and payload. A ``DECISION`` record's payload is the decision as
the Ledger receives it (:func:`transport.protocol.decision_record`), its seq the worker's own number
for it (increasing, never reused once committed). An ``ACKED`` record says every decision up to its seq
was acknowledged by the Ledger (a hint: losing one only means re-delivering, which the Ledger counts
as duplicates).

A record cut short or whose CRC does not match ends the valid part of its file: a write torn by a
crash or a power loss is detected here, and what follows it is dropped. Such a record was never
printed (a decision is printed only once the write holding it is fsync'd).
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field
from typing import Final, NamedTuple

import msgpack

MAGIC: Final = b"RPSPOOL1"  # a segment file's first bytes: anything else is not ours and is left alone
SUFFIX: Final = ".seg"
_HEAD: Final = struct.Struct("<II")  # length, crc
_TAIL: Final = struct.Struct("<QB")  # seq, kind (the start of what the CRC covers)
HEADER_BYTES: Final = _HEAD.size + _TAIL.size
PAYLOAD_MAX: Final = 64 * 1024  # a decision record is ~150 bytes (at most ~5 KiB): a longer length is damage


class Kind(enum.IntEnum):
    DECISION = 1
    ACKED = 2


def frame(seq: int, kind: Kind, payload: bytes = b"") -> bytes:
    """One record, ready to append (the CRC runs on over the tail, then the payload: one copy of it)."""
    tail = _TAIL.pack(seq, kind)
    return b"".join((_HEAD.pack(len(payload), zlib.crc32(payload, zlib.crc32(tail))), tail, payload))


class Record(NamedTuple):
    seq: int
    kind: int
    payload: bytes
    offset: int  # where the record starts in its file


@dataclass(slots=True)
class Parsed:
    """The whole, valid records of a stretch of bytes, and where they end."""

    records: list[Record]
    end: int  # offset just after the last valid record
    damaged: bool  # bytes follow ``end`` that are no valid record (torn, or corrupt)


def parse(data: bytes, start: int = 0, base: int = 0) -> Parsed:
    """The records of ``data[start:]``, stopping at the first that is cut short or fails its CRC.
    ``base`` is the file offset of ``data[0]`` (offsets returned are file offsets)."""
    records: list[Record] = []
    view = memoryview(data)
    pos, size = start, len(data)
    unpack_head, unpack_tail, crc32 = _HEAD.unpack_from, _TAIL.unpack_from, zlib.crc32
    while pos < size:
        if size - pos < HEADER_BYTES:
            return Parsed(records, base + pos, True)
        length, crc = unpack_head(data, pos)
        body_end = pos + HEADER_BYTES + length
        if length > PAYLOAD_MAX or body_end > size or crc32(view[pos + _HEAD.size:body_end]) != crc:
            return Parsed(records, base + pos, True)
        seq, kind = unpack_tail(data, pos + _HEAD.size)
        records.append(Record(seq, kind, data[pos + HEADER_BYTES:body_end], base + pos))
        pos = body_end
    return Parsed(records, base + pos, False)


def segment_name(number: int) -> str:
    return f"{number:012d}{SUFFIX}"


def segment_number(name: str) -> int | None:
    """The number of a segment file's name, None for another file."""
    stem = name.removesuffix(SUFFIX)
    if stem == name or len(stem) != 12 or not stem.isdigit():
        return None
    return int(stem)


# --- what a scan recovers ----------------------------------------------------------------------------


class LastDecision(NamedTuple):
    """A pair's newest decision in the spool: the run (the Scheduler run's t0) and tick it was for, and
    the price set (decimal text)."""

    run: float
    tick: int
    price: str


@dataclass(slots=True)
class SegmentScan:
    number: int
    size: int  # bytes of valid records (with MAGIC): the file is cut here if it was longer
    decisions: int = 0
    first_seq: int = 0  # of its decisions (0: none)
    last_seq: int = 0
    newest: tuple[float, int] = (0.0, -1)  # the newest (run, tick) decided in it
    damaged_bytes: int = 0  # cut off: a torn or corrupt record and everything after it
    foreign: bool = False  # not a spool segment (no MAGIC): left alone, never read, never removed


@dataclass(slots=True)
class Scan:
    """Everything the files say, oldest segment first."""

    segments: list[SegmentScan] = field(default_factory=list)
    acked: int = 0  # every decision up to this seq was acknowledged (the newest ACKED record)
    last_seq: int = 0  # the highest seq of any decision
    last: dict[tuple[str, str], LastDecision] = field(default_factory=dict)  # per (book, strategy)
    unreadable: int = 0  # decision records whose payload could not be read back (counted, skipped)

    def add_segment(self, number: int, data: bytes) -> SegmentScan:
        """Read one segment's bytes (the whole file) into the scan."""
        if not data.startswith(MAGIC):
            segment = SegmentScan(number, len(data), foreign=bool(data))
            self.segments.append(segment)
            return segment
        parsed = parse(data, len(MAGIC))
        segment = SegmentScan(number, parsed.end, damaged_bytes=len(data) - parsed.end)
        for record in parsed.records:
            if record.kind == Kind.ACKED:
                self.acked = max(self.acked, record.seq)
            elif record.kind == Kind.DECISION:
                self._decision(segment, record)
        self.segments.append(segment)
        return segment

    def _decision(self, segment: SegmentScan, record: Record) -> None:
        segment.decisions += 1
        segment.first_seq = segment.first_seq or record.seq
        segment.last_seq = record.seq
        self.last_seq = max(self.last_seq, record.seq)
        found = _key_of(record.payload)
        if found is None:
            self.unreadable += 1
            return
        pair, last = found
        when = (last.run, last.tick)
        segment.newest = max(segment.newest, when)
        known = self.last.get(pair)
        if known is None or when >= (known.run, known.tick):
            self.last[pair] = last

    @property
    def unacked(self) -> int:
        """Decision records newer than the acknowledged mark: to deliver again (a segment's seqs are
        consecutive)."""
        return sum(min(s.decisions, s.last_seq - max(s.first_seq - 1, self.acked))
                   for s in self.segments if s.decisions and s.last_seq > self.acked)


def _key_of(payload: bytes) -> tuple[tuple[str, str], LastDecision] | None:
    """(book, strategy) and (run, tick, price) of a decision record's payload; None if unreadable.
    Only these fields are read: a scan of a full spool must be quick."""
    try:
        f = msgpack.unpackb(payload, raw=False)
        book, strategy, tick, price, run = f[2], f[3], f[1], f[8], f[11]
    except Exception:  # msgpack raises several unrelated types for garbage; a short list IndexError
        return None
    if not (type(book) is str and type(strategy) is str and type(tick) is int and type(price) is str
            and type(run) in (int, float)):
        return None
    return (book, strategy), LastDecision(float(run), tick, price)
