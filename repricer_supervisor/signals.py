"""SIGINT and SIGTERM as a stop request, SIGHUP as a reload request, both waking the supervisor's poll."""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType, TracebackType
from typing import Any


class StopSignals:
    """While entered: SIGINT/SIGTERM set :attr:`requested`, SIGHUP sets :attr:`reload`, and either
    makes :attr:`fd` readable (the signal module writes to it: ``set_wakeup_fd``), so a poll on it
    returns at once. Restores the previous handlers on exit."""

    def __init__(self) -> None:
        self.requested = False
        self.reload = False
        self.fd = -1
        self._write_fd = -1
        self._previous_wakeup = -1
        self._previous: dict[int, Any] = {}

    def _request(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.requested = True

    def __enter__(self) -> StopSignals:
        self.fd, self._write_fd = os.pipe()
        for fd in (self.fd, self._write_fd):
            os.set_blocking(fd, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd)
        self._previous = {signum: signal.signal(signum, self._request)
                          for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        return self

    def drain(self) -> None:
        """Empty the pipe after a wake-up (the request itself stays set)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 512)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        os.close(self.fd)
        os.close(self._write_fd)
