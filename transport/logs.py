"""Logging what peers send, safely: rate-limited per kind of problem, and with control characters
escaped so a peer can neither flood stderr nor forge a line in it; a frame a peer sends that the
protocol refuses is counted and logged that way (:class:`FrameDecoder`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Final, TypeVar, overload

from transport import protocol

_SHORT: Final = MappingProxyType({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                                else f"\\U{code:08x}")


def printable(text: object, limit: int = 200) -> str:
    """``text`` as one safe log token: at most ``limit`` characters, control characters (newlines
    included) escaped, so what a peer sent can never start a line of its own in the log."""
    value = text if isinstance(text, str) else str(text)
    if len(value) > limit:
        value = value[:limit] + "..."
    return value if value.isprintable() else "".join(map(_escape, value))


class RateLimitedLog:
    """Log a repeated problem at most ``burst`` times per ``window`` seconds per kind, then say how
    many were suppressed: bad input must be visible, but must not flood stderr (a log is bounded too).
    Arguments are escaped with :func:`printable` (each cut at ``limit`` characters): they usually come
    from a peer."""

    def __init__(self, logger: logging.Logger, burst: int = 5, window: float = 60.0, kinds: int = 64,
                 clock: Callable[[], float] = time.monotonic, limit: int = 200) -> None:
        self._log, self._clock, self._state = logger, clock, dict[str, tuple[float, int]]()
        self._budget = (burst, window, kinds, limit)  # per kind: lines, per seconds; kinds kept; arg length

    def info(self, kind: str, message: str, *args: object) -> None:
        self._emit(logging.INFO, kind, message, args)

    def warning(self, kind: str, message: str, *args: object) -> None:
        self._emit(logging.WARNING, kind, message, args)

    def error(self, kind: str, message: str, *args: object) -> None:
        self._emit(logging.ERROR, kind, message, args)

    def _emit(self, level: int, kind: str, message: str, args: tuple[object, ...]) -> None:
        burst, window, kinds, limit = self._budget
        now = self._clock()
        if kind not in self._state and len(self._state) >= kinds:
            kind = "other"  # one shared budget for kinds beyond the table: the log stays bounded
        started, count = self._state.get(kind, (now, 0))
        if now - started >= window:
            if count > burst:
                self._log.log(level, "%s: %d more suppressed in the last %.0fs", kind, count - burst, now - started)
            started, count = now, 0
        count += 1
        self._state[kind] = (started, count)
        if count <= burst:
            self._log.log(level, message, *(a if isinstance(a, int | float) else printable(a, limit) for a in args))


def loop_error_handler(rlog: RateLimitedLog) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An event loop's exception handler: one escaped, rate-limited line per error asyncio caught in a
    callback, not its default multi-line traceback (a peer may cause it again and again: 2,000
    clients once made 21,491 tracebacks in 25 s)."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        rlog.error("event_loop", "event loop: %s: %s", context.get("message", "error"), repr(context.get("exception")))

    return handle


_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")


class FrameDecoder:
    """Decodes the frames of one socket: a frame :func:`protocol.decode_as` refuses is counted under
    ``counters[counter]`` and logged (rate-limited, as ``kind``: "``message``: the reason"), then
    answered with None, never raised: a peer's bad frame costs a counter and a log line, not a crash."""

    def __init__(self, counters: dict[str, int], counter: str, log: RateLimitedLog, kind: str, message: str) -> None:
        self._counters = counters
        self._counter = counter
        self._log = log
        self._kind = kind
        self._message = message + ": %s"
        self.last_error = ""  # why the last frame was refused, to answer its sender with

    def _refuse(self, reason: object) -> None:
        self.last_error = str(reason)
        self._counters[self._counter] += 1
        self._log.warning(self._kind, self._message, reason)

    @overload
    def routed(self, frames: list[bytes], kind: type[_A], other: type[_B], /) -> tuple[bytes, _A | _B] | None: ...

    @overload
    def routed(self, frames: list[bytes], kind: type[_A], other: type[_B], third: type[_C], /
               ) -> tuple[bytes, _A | _B | _C] | None: ...

    def routed(self, frames: list[bytes], *kinds: type[Any]) -> Any:
        """A ROUTER's message as (the peer's identity, its decoded message of one of the kinds): a
        DEALER sends one frame, no delimiter; anything else is refused (counted, logged) as None."""
        if len(frames) != 2:
            self._refuse(f"expected [identity, frame], got {len(frames)} frames")
            return None
        message = self.decode_as(frames[1], *kinds)
        return None if message is None else (frames[0], message)

    @overload
    def decode_as(self, frame: bytes, kind: type[_A], /) -> _A | None: ...

    @overload
    def decode_as(self, frame: bytes, kind: type[_A], other: type[_B], /) -> _A | _B | None: ...

    @overload
    def decode_as(self, frame: bytes, kind: type[_A], other: type[_B], third: type[_C], /) -> _A | _B | _C | None: ...

    def decode_as(self, frame: bytes, *kinds: type[Any]) -> Any:
        try:
            return protocol.decode_as(frame, *kinds)
        except protocol.ProtocolError as exc:
            self._refuse(exc)
            return None
