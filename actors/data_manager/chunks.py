"""Reading whole lines from the CSV file at a byte offset, never blocking the event loop on the disk.

What the page cache holds is read inline with ``preadv(RWF_NOWAIT)`` (~10 us for 64 KiB); what it
does not is read by ``os.pread`` in the default executor.
Not every read goes through the executor: each hand-off costs the event loop a GIL switch (up to the
5 ms switch interval when the pool thread holds it), which with thousands of small catch-up reads
made every ZeroMQ send on the loop wait. A cursor reads only complete lines, and never past ``limit``
(a catch-up never reads past the frontier, whose rows alone are validated and counted).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from transport import limits

T = TypeVar("T")

CHUNK_BYTES: Final = limits.CSV_LINE_MAX_BYTES  # a line longer than one chunk is skipped as a bad row
SKIP_BYTES: Final = 4 * 1024 * 1024  # read at once while looking for the end of a line to skip
SKIP_YIELD_EVERY: Final = 4  # reads of a skipped line between two turns of the event loop (~2 ms)

BlockKind = Literal["lines", "eof", "partial", "long"]


@dataclass(frozen=True, slots=True)
class Block:
    """What one read found at ``start``.

    * ``lines``: complete lines (without their ``\\n``; the last one may lack it only when it ends at
      ``limit``), ``end`` the offset after them;
    * ``eof``: nothing to read; ``partial``: only the start of an unterminated last line (``end``: how
      far it was searched for its newline, when it is longer than a chunk, else ``start``);
    * ``long``: a line longer than :data:`CHUNK_BYTES`, skipped: ``end`` is the offset after it.
    """

    start: int
    lines: list[bytes]
    end: int
    kind: BlockKind


async def io(fn: Callable[..., T], *args: object) -> T:
    """Run a blocking file call in the default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def pread(fd: int, size: int, offset: int) -> bytes:
    """``os.pread``, inline when the page cache has the bytes (or at the end of the file), else in the
    executor."""
    nowait = getattr(os, "RWF_NOWAIT", 0)
    if nowait:
        buffer = bytearray(size)
        try:
            got = os.preadv(fd, [buffer], offset, nowait)
        except BlockingIOError:
            got = -1  # not cached
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            got = -1  # a file system without RWF_NOWAIT
        # 0 is the end of the file (RWF_NOWAIT says EAGAIN when it would wait); a short read is the
        # end of the file too unless only part of the range was cached.
        if got == size or got == 0 or (got > 0 and offset + got >= os.fstat(fd).st_size):
            return bytes(buffer[:got]) if got < size else bytes(buffer)
    data: bytes = await io(os.pread, fd, size, offset)
    return data


async def read_lines(fd: int, start: int, size: int = CHUNK_BYTES, limit: int | None = None,
                     scanned: int = 0) -> Block:
    """Complete lines from ``start``: up to ``size`` bytes (more if one line is longer), not past ``limit``.
    ``scanned``: an offset up to which an earlier call found no newline after ``start`` (the ``end`` of
    its ``partial`` block): a line longer than a chunk is searched from there, not from its start again."""
    want = size if limit is None else min(size, limit - start)
    if want <= 0:
        return Block(start, [], start, "eof")
    data = await pread(fd, want, start)
    if not data:
        return Block(start, [], start, "eof")
    cut = data.rfind(b"\n") + 1
    if cut:
        return Block(start, data[:cut - 1].split(b"\n"), start + cut, "lines")
    if limit is not None and start + len(data) == limit:
        return Block(start, [data], limit, "lines")  # the accepted unterminated last line
    if len(data) < want:
        return Block(start, [], start, "partial")
    if want < CHUNK_BYTES:  # one line longer than this small read: read a whole chunk
        return await read_lines(fd, start, CHUNK_BYTES, limit, scanned)
    pos = max(start + len(data), scanned)  # a line longer than a chunk: find its end and skip it
    for chunks in itertools.count(1):
        more = await pread(fd, SKIP_BYTES, pos)
        if not more:
            return Block(start, [], pos, "partial")  # no newline up to pos: a later call goes on from there
        newline = more.find(b"\n")
        if newline >= 0:
            return Block(start, [], pos + newline + 1, "long")
        pos += len(more)
        if not chunks % SKIP_YIELD_EVERY:
            await asyncio.sleep(0)  # cached reads return at once: let the event loop run (a 1 GiB line)
    raise AssertionError("unreachable")
