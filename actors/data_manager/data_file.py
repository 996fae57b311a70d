"""The CSV file, followed like ``tail -F``: its open file, its header, and what happens at its end.

* Rows appended later are read (a request that would be answered "past the end" or "unknown book"
  first makes the frontier look at the end of the file once more).
* A file that shrank below the frontier was truncated: it is read again from the start.
* A path that now names another inode was rotated: the new file is read from the start.
* A last line without its newline is taken once the file size has not changed for 0.5 s.
* A missing, unreadable or header-less file is logged once (again when the reason changes), counted
  and retried every second; requests meanwhile get an error reply ("data file unavailable: ...");
  the actor never exits over its data.
  So is a path that names a FIFO, a device or a directory at the start: the file is opened without
  waiting (:mod:`transport.files`), so a FIFO blocks nothing. One put at the path mid-run is ignored:
  the file open is read on (counted ``not_regular``), and the real file put back is that same file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from typing import Final, Literal

from actors.csv_rows import Columns, CsvFormatError, parse_header
from actors.data_manager.chunks import Block, io, read_lines
from transport import files
from transport.logs import RateLimitedLog

log = logging.getLogger("datamanager")

PARTIAL_LINE_SETTLE: Final = 0.5
RETRY_INTERVAL: Final = 1.0
LONG_LINES_KEPT: Final = 256  # ends of over-long lines remembered, so catch-ups skip them unread

# What a frontier read may find instead of lines: the end of the file (one more pass over it), a last
# line still being written ("wait" ``settle_wait`` seconds), or a truncated/rotated/removed file.
FrontierEvent = Literal["eof", "wait", "changed"]


class DataFile:
    def __init__(self, path: str, counters: dict[str, int], rlog: RateLimitedLog) -> None:
        self.path = path
        self._counters = counters
        self._rlog = rlog
        self.fd = -1
        self._id = (0, 0)  # (st_dev, st_ino) of the open file
        self.columns: Columns | None = None  # None until the header line has been read
        self.line_no = 0  # lines the frontier has read
        self.at_eof = False
        self.eof_gen = 0  # passes of the frontier over the end of the file
        self.unavailable: str | None = None
        self.retry_at = 0.0  # monotonic time of the next attempt to open a failed file
        self.settle_wait = 0.0
        self._partial: tuple[int, float] | None = None  # (size, first seen) of an unterminated last line
        self._scanned: tuple[int, int] | None = None  # (start, searched to) of a long line without newline yet
        self.long_lines: dict[int, int] = {}  # start -> end of lines over a chunk found (skipped), oldest first

    @property
    def is_open(self) -> bool:
        return self.fd >= 0

    async def open(self) -> bool:
        try:
            fd, st = await io(files.open_fd, self.path)  # never waits on a FIFO; refuses it, a device...
        except OSError as exc:
            self.fail(f"{exc.strerror or exc}: {self.path}")
            return False
        if self.unavailable is not None and not self.unavailable.startswith("bad header"):
            log.info("data file %s is available again", self.path)
            self.unavailable = None  # a bad header stays the reason until a good one is read
        self.fd, self._id = fd, (st.st_dev, st.st_ino)
        self._restart()
        return True

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def fail(self, reason: str) -> None:
        """The file cannot be read: said once per reason (the retries every second are only counted)."""
        self._counters["file_errors"] += 1
        if reason != self.unavailable:
            self._rlog.warning("file_error", "data file unavailable (trying again every %.0fs, said once): %s",
                               RETRY_INTERVAL, reason)
        self.unavailable = reason
        self.retry_at = time.monotonic() + RETRY_INTERVAL
        self.close()

    def header(self, text: str) -> bool:
        """Read the header line; False (and the file failed) when it is unusable."""
        try:
            self.columns = parse_header(text)
        except CsvFormatError as exc:
            self.fail(f"bad header in {self.path}: {exc}")
            return False
        if self.unavailable is not None:
            log.info("data file %s has a valid header again", self.path)
            self.unavailable = None
        return True

    def _restart(self) -> None:
        self.columns, self.line_no, self.at_eof, self._partial = None, 0, False, None
        self._scanned = None
        self.long_lines.clear()

    def changed(self, position: int) -> bool:
        """True when the file was truncated below ``position``, rotated or removed (read it again)."""
        try:  # inline: a metadata call, cheaper than a hand-off to the executor (see chunks.py)
            st = os.stat(self.path)
        except OSError as exc:
            self.fail(f"{exc.strerror or exc}: {self.path}")
            return True
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or a device put at the path is no file to read: keep reading the one open, which
            # is still the last good data (issue 20: the swap used to stop every decision).
            self._counters["not_regular"] += 1
            self._rlog.warning("not_regular", "%s is now %s, not a regular file: still reading the file it named "
                               "before", self.path, files.kind(st.st_mode))
            return False
        if (st.st_dev, st.st_ino) != self._id:
            self._counters["rotations"] += 1
            self._rlog.warning("rotation", "%s was replaced (rotated): reading the new file from the start",
                               self.path)
            self.close()
            return True
        size = os.fstat(self.fd).st_size
        if size < position:
            self._counters["truncations"] += 1
            self._rlog.warning("truncation", "%s shrank from %d to %d bytes (truncated): reading it again from "
                               "the start", self.path, position, size)
            self._restart()
            return True
        return False

    def _long(self, block: Block) -> Block:
        """Remember how far a line longer than a chunk was searched, and where one ends: neither is read
        again (a 1 GiB line being written used to be read whole at every look, the event loop waiting)."""
        if block.kind == "partial" and block.end > block.start:
            self._scanned = (block.start, block.end)
        elif block.kind == "long":
            self._scanned = None
            self.long_lines[block.start] = block.end
            if len(self.long_lines) > LONG_LINES_KEPT:
                del self.long_lines[next(iter(self.long_lines))]
        return block

    def _scanned_from(self, position: int) -> int:
        return self._scanned[1] if self._scanned is not None and self._scanned[0] == position else 0

    async def read_frontier(self, position: int) -> Block | FrontierEvent:
        """The next lines for the frontier at ``position``, or what it found instead."""
        end = self.long_lines.get(position)
        if end is not None:
            return Block(position, [], end, "long")
        block = self._long(await read_lines(self.fd, position, scanned=self._scanned_from(position)))
        if block.kind not in ("eof", "partial"):
            self.at_eof, self._partial = False, None
            return block
        if self.changed(position):
            return "changed"
        if block.kind == "eof":
            self._partial = None
            self.at_eof = True
            self.eof_gen += 1
            return "eof"
        size = os.fstat(self.fd).st_size
        now = time.monotonic()
        if self._partial is None or self._partial[0] != size:
            self._partial = (size, now)
        waited = now - self._partial[1]
        if waited < PARTIAL_LINE_SETTLE:  # a writer may be mid-line: wait for its newline
            self.settle_wait = PARTIAL_LINE_SETTLE - waited
            return "wait"
        self._partial = None
        last = self._long(await read_lines(self.fd, position, limit=size, scanned=self._scanned_from(position)))
        if last.kind == "lines":
            return last
        return Block(position, [], size, "long")  # the unterminated last line is over a chunk long
