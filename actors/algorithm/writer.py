"""Printing decisions without ever blocking the event loop.

Lines produced in one turn of the event loop are written together, in chunks of whole lines of at
most ``PIPE_BUF`` bytes: one ``write(2)`` each, so several workers sharing a pipe never interleave
mid-line, with far fewer system calls than one per line. The writes happen on one thread of their
own: a consumer that stops reading stdout blocks that thread, never the loop, so the heartbeat goes on
and the Algorithm is not killed as hung. Meanwhile lines wait in a buffer bounded by
``max_buffer`` bytes; past it new lines are dropped and counted (``output_dropped``), with a
rate-limited warning. Decisions go on being made and registered: only their printing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import select
import sys
import threading
from typing import Final, TextIO

from transport.logs import RateLimitedLog

log = logging.getLogger("algorithm")

PIPE_BUF: Final = select.PIPE_BUF  # writes up to this size to a pipe are atomic
DEFAULT_MAX_BUFFER: Final = 8 * 1024 * 1024


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


class OutputWriter:
    """Whole lines to ``out`` (stdout's fd through a writer thread, or any text stream directly)."""

    def __init__(self, out: TextIO, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self._out = out
        self._fd = real_fd(out)
        self._max = max_buffer
        self._lines: list[bytes] = []
        self._scheduled = False
        self._queued = 0  # bytes handed to the thread and not yet written
        self._lock = threading.Lock()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._closing = False
        self._log = RateLimitedLog(log)
        self.counters: dict[str, int] = {"output_dropped": 0, "output_errors": 0, "output_writes": 0}

    def start(self) -> None:
        if self._fd is not None and self._thread is None:
            self._thread = threading.Thread(target=self._write_loop, name="stdout-writer", daemon=True)
            self._thread.start()

    def write(self, line: bytes) -> None:
        """Print ``line`` (one decision, ending in a newline) soon, in order, never blocking."""
        self._lines.append(line)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        lines, self._lines = self._lines, []
        if not lines:
            return
        if self._fd is None:
            self._write_stream(lines)
            return
        for chunk in _chunks(lines):
            with self._lock:
                if self._queued + len(chunk) > self._max:
                    dropped = chunk.count(b"\n")
                    self.counters["output_dropped"] += dropped
                    self._log.warning("output_full", "stdout is not being read: %d line(s) dropped (%d bytes "
                                      "waiting, limit %d)", dropped, self._queued, self._max)
                    continue
                self._queued += len(chunk)
                self._idle.clear()
            self._chunks.put(chunk)

    def _write_stream(self, lines: list[bytes]) -> None:
        try:
            self._out.write(b"".join(lines).decode())
            self._out.flush()
        except OSError as exc:  # e.g. stdout closed by `| head`: say so, count it, keep serving
            self.counters["output_errors"] += len(lines)
            self._log.warning("output", "could not print %d decision(s): %s", len(lines), exc)
        else:
            self.counters["output_writes"] += 1

    def _write_loop(self) -> None:
        assert self._fd is not None
        while (chunk := self._chunks.get()) is not None:
            error: OSError | None = None
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as exc:
                error = exc
            with self._lock:
                self._queued -= len(chunk)
                if error is not None:
                    self.counters["output_errors"] += chunk.count(b"\n")
                else:
                    self.counters["output_writes"] += 1
                if self._queued == 0:
                    self._idle.set()
            if error is not None:  # logging is thread-safe; the rate limit is checked under no lock
                self._log.warning("output", "could not print decisions: %s", error)

    def close(self, timeout: float) -> bool:
        """Flush, then wait up to ``timeout`` seconds for the thread to write everything; True when
        all was written (a stuck consumer leaves the daemon thread blocked in write, and lines lost)."""
        self.flush()
        if self._thread is None:
            return True
        drained = self._idle.wait(timeout)
        if not self._closing:
            self._closing = True
            self._chunks.put(None)  # the thread ends after what is queued
        if drained:
            self._thread.join(timeout)
        return drained


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
