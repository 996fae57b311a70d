"""Printing decisions without ever blocking the event loop.

Lines are written together (those of one turn of the event loop, or of ``COALESCE`` seconds when
they come fast), in chunks of whole lines of at most ``PIPE_BUF`` bytes: one ``write(2)`` each, so
several workers sharing a pipe never interleave mid-line, with far fewer system calls than one per
line.

When stdout is a pipe or a terminal, it is reopened (``/proc/self/fd/1``) as a file of our own in
non-blocking mode -- a new open file description, so the launcher's and the other workers' stdout
keep their flags -- and written from the event loop: a write the pipe has no room for fails at once
instead of blocking (a write of at most ``PIPE_BUF`` bytes to a pipe is all or nothing), and the rest
waits in a buffer bounded by ``max_buffer`` bytes until the loop sees the pipe writable again. Past
the bound, new lines are dropped and counted (``output_dropped``) with a rate-limited warning. So a
consumer that stops reading never stops the loop (nor the heartbeat: no hang kill); decisions go on
being made and registered, only their printing is lost. A regular file is written directly (a disk
write does not wait on a reader).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import select
import stat
import sys
from typing import Final, TextIO

from transport.logs import RateLimitedLog

log = logging.getLogger("algorithm")

PIPE_BUF: Final = select.PIPE_BUF  # writes up to this size to a pipe are atomic
DEFAULT_MAX_BUFFER: Final = 8 * 1024 * 1024
# Writes come at most this often: a line waits for the next one only when one just went out, so a
# lone decision is printed at once while thousands a second go out in a few hundred writes (each
# write to a pipe wakes its reader: py-spy put one write per line at ~40% of the Algorithm's CPU).
COALESCE: Final = 0.002


def real_fd(out: TextIO) -> int | None:
    """The file descriptor behind ``out`` if it is the process's stdout, else None (tests pass a
    StringIO)."""
    if out is not sys.__stdout__:
        return None
    try:
        out.flush()
        return out.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _nonblocking_fd(fd: int) -> tuple[int, bool]:
    """(fd to write to, whether it is ours and non-blocking): a pipe or terminal is reopened
    non-blocking; anything else (a regular file) is written as it is."""
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC), True
    except OSError:
        pass
    return fd, False


class OutputWriter:
    """Whole lines to ``out`` (stdout's fd, or any text stream directly)."""

    def __init__(self, out: TextIO, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self._out = out
        self._stdout_fd = real_fd(out)
        self._fd: int | None = None
        self._owned = False
        self._max = max_buffer
        self._lines: list[bytes] = []
        self._scheduled = False
        self._last_flush = -COALESCE
        self._backlog: collections.deque[bytes] = collections.deque()  # chunks the pipe had no room for
        self._backlog_bytes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained = asyncio.Event()
        self._log = RateLimitedLog(log)
        self.counters: dict[str, int] = {"output_dropped": 0, "output_errors": 0, "output_writes": 0}

    def start(self) -> None:
        if self._stdout_fd is not None and self._fd is None:
            self._fd, self._owned = _nonblocking_fd(self._stdout_fd)

    def write(self, line: bytes) -> None:
        """Print ``line`` (one decision, ending in a newline) soon, in order, never blocking."""
        self._lines.append(line)
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            wait = self._last_flush + COALESCE - loop.time()
            if wait > 0:
                loop.call_later(wait, self.flush)
            else:
                loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        with contextlib.suppress(RuntimeError):  # flushed from aclose() or a test without a loop
            self._last_flush = asyncio.get_running_loop().time()
        lines, self._lines = self._lines, []
        if not lines:
            return
        if self._fd is None:
            self._write_stream(lines)
            return
        for chunk in _chunks(lines):
            if self._backlog or not self._write(chunk):
                self._queue(chunk)

    def _write(self, chunk: bytes) -> bool:
        """Write ``chunk`` now; False if the pipe is full (nothing written, or the rest kept)."""
        assert self._fd is not None
        try:
            written = os.write(self._fd, chunk)
        except BlockingIOError:
            return False
        except OSError as exc:  # e.g. stdout closed by `| head`: say so, count it, keep serving
            self.counters["output_errors"] += chunk.count(b"\n")
            self._log.warning("output", "could not print decisions: %s", exc)
            return True
        self.counters["output_writes"] += 1
        if written < len(chunk):  # only a chunk over PIPE_BUF (one long line) can be cut
            self._backlog.appendleft(chunk[written:])
            self._backlog_bytes += len(chunk) - written
            self._watch()
        return True

    def _queue(self, chunk: bytes) -> None:
        if self._backlog_bytes + len(chunk) > self._max:
            dropped = chunk.count(b"\n")
            self.counters["output_dropped"] += dropped
            self._log.warning("output_full", "stdout is not being read: %d line(s) dropped (%d bytes waiting, "
                              "limit %d)", dropped, self._backlog_bytes, self._max)
            return
        self._backlog.append(chunk)
        self._backlog_bytes += len(chunk)
        self._watch()

    def _watch(self) -> None:
        if self._loop is None and self._fd is not None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_writer(self._fd, self._drain)

    def _drain(self) -> None:
        """The pipe has room again: write what waits, in order, until it is full again."""
        while self._backlog:
            chunk = self._backlog.popleft()
            self._backlog_bytes -= len(chunk)
            if not self._write(chunk):
                self._backlog.appendleft(chunk)
                self._backlog_bytes += len(chunk)
                return
        if self._loop is not None and self._fd is not None:
            self._loop.remove_writer(self._fd)
            self._loop = None
        self._drained.set()

    def _write_stream(self, lines: list[bytes]) -> None:
        try:
            self._out.write(b"".join(lines).decode())
            self._out.flush()
        except OSError as exc:
            self.counters["output_errors"] += len(lines)
            self._log.warning("output", "could not print %d decision(s): %s", len(lines), exc)
        else:
            self.counters["output_writes"] += 1

    async def aclose(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bound on the drain, not on a call
        """Flush, then wait up to ``timeout`` seconds for what waits to be written; True when all
        was (a consumer that never reads again leaves lines unprinted, and we stop anyway)."""
        self.flush()
        if self._backlog:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)  # _drain() writes meanwhile
        done = not self._backlog
        if self._loop is not None and self._fd is not None:
            self._loop.remove_writer(self._fd)
            self._loop = None
        if self._owned and self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        return done


def _chunks(lines: list[bytes]) -> list[bytes]:
    """Whole lines joined into chunks of at most PIPE_BUF bytes (a longer line is a chunk alone)."""
    chunks: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for line in lines:
        if size + len(line) > PIPE_BUF and group:
            chunks.append(b"".join(group))
            group, size = [], 0
        group.append(line)
        size += len(line)
    if group:
        chunks.append(b"".join(group))
    return chunks
