"""The files of one worker's spool, in its own directory. Every method blocks: the spool calls them
from threads of its own (writes, creations and removals from one, reads from another), never from the
event loop.

A lock file (``flock``) keeps a second process from using the same directory: two workers appending to
one spool would interleave their records. The lock dies with its process, so a worker SIGKILLed and
restarted finds it free.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Final

from actors.algorithm.spool.records import MAGIC, Scan, segment_name, segment_number

LOCK_NAME: Final = "lock"
LOCK_POLL: Final = 0.1  # seconds between attempts to take the lock (a previous process may still be exiting)
_sync = getattr(os, "fdatasync", os.fsync)  # the file's data and size; not its times


class SpoolLocked(RuntimeError):
    """Another process holds the spool's directory."""


class Disk:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock_fd: int | None = None
        self._active: int | None = None  # the segment being appended to

    def lock(self, timeout: float) -> None:
        """Create the directory if needed and take its lock, waiting up to ``timeout`` seconds;
        :class:`SpoolLocked` if another process keeps it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                    os.close(fd)
                    raise SpoolLocked(f"{self.directory} is used by another process (pid {holder}): one worker "
                                      "per spool directory") from None
                time.sleep(LOCK_POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def scan(self) -> Scan:
        """Read every segment, oldest first; a torn or corrupt end is cut off the file (it was never
        printed). Foreign files are left as they are."""
        scan = Scan()
        numbered = sorted((number, path) for path in self.directory.iterdir()
                          if (number := segment_number(path.name)) is not None and path.is_file())
        for number, path in numbered:
            data = path.read_bytes()
            segment = scan.add_segment(number, data)
            if segment.damaged_bytes and not segment.foreign:
                with open(path, "r+b") as file:
                    file.truncate(segment.size)
                    os.fsync(file.fileno())
        return scan

    def create(self, number: int, preamble: bytes) -> int:
        """Start segment ``number`` (closing the one before) with MAGIC and ``preamble``, durably
        (the file, and its name in the directory); its size."""
        self.close_active()
        path = self.directory / segment_name(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, MAGIC + preamble)
            _sync(fd)
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        self._active = fd
        return len(MAGIC) + len(preamble)

    def append(self, data: bytes, committed: int) -> None:
        """Append ``data`` to the active segment and wait until it is on disk. On failure the segment
        is cut back to ``committed`` bytes (what was durable before) as far as the disk allows, and
        the error raised: the caller writes the records again in a new segment."""
        if self._active is None:
            raise OSError(errno.EBADF, "no active spool segment")
        try:
            self._write(self._active, data)
            _sync(self._active)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._active, committed)
            self.close_active()
            raise

    def _write(self, fd: int, data: bytes) -> None:
        _write_all(fd, data)

    def close_active(self) -> None:
        if self._active is not None:
            with contextlib.suppress(OSError):
                os.close(self._active)
            self._active = None

    def remove(self, number: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / segment_name(number)).unlink()

    def read(self, number: int, offset: int, size: int) -> bytes:
        """``size`` bytes of segment ``number`` from ``offset`` (what is there, if less)."""
        fd = os.open(self.directory / segment_name(number), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.close_active()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
