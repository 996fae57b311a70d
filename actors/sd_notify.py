"""systemd's service notifications (``sd_notify``), for an actor run as a systemd service
(deploy/systemd): ``READY=1`` once its event loop runs, ``WATCHDOG=1`` from that loop twice per
``WatchdogSec`` (so a blocked loop is killed and restarted by systemd within the same 3 s bound the
launcher uses), ``STATUS=`` saying whether it is ready and why not, ``STOPPING=1`` when it stops.

Only when systemd asks for it: ``NOTIFY_SOCKET`` set (``Type=notify``), and the watchdog only with
``WATCHDOG_USEC`` (for this process, per ``WATCHDOG_PID``). One datagram per message, never blocking;
a message that cannot leave is counted, not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from actors.probes import Readiness
from transport.logs import printable


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    address: str | bytes  # a path, or an abstract socket's name (a leading NUL)
    watchdog: float | None  # seconds between WATCHDOG=1 messages, or None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int) -> NotifyConfig | None:
        """What systemd asked for in this process's environment (None: not run by systemd as notify)."""
        path = environ.get("NOTIFY_SOCKET", "")
        if not path or not (path.startswith(("/", "@"))):
            return None
        address: str | bytes = b"\0" + path[1:].encode() if path.startswith("@") else path
        watchdog = None
        usec, for_pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not for_pid or for_pid == str(pid)):
            watchdog = int(usec) / 2e6  # twice per period, as sd_watchdog_enabled(3) advises
        return cls(address, watchdog)


def status(readiness: Readiness) -> str:
    return "STATUS=" + ("ready" if readiness.ready else f"not ready: {printable(readiness.reason, 200)}")


class Notifier:
    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self.counters = {"sd_notify_failed": 0}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)

    def send(self, *lines: str) -> None:
        try:
            self._sock.sendto("\n".join(lines).encode(), self.config.address)
        except OSError:
            self.counters["sd_notify_failed"] += 1

    def close(self) -> None:
        self._sock.close()

    async def run(self, readiness: Callable[[], Readiness], stop: asyncio.Event, every: float = 1.0) -> None:
        """From the event loop until ``stop``: READY=1 at once, then WATCHDOG=1 (if asked) and the STATUS
        when it changes, every ``every`` seconds or the watchdog's half period, whichever is shorter."""
        interval = min(every, self.config.watchdog) if self.config.watchdog else every
        shown = status(readiness())
        self.send("READY=1", shown)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
            if stop.is_set():
                break
            lines = ["WATCHDOG=1"] if self.config.watchdog else []
            now = status(readiness())
            if now != shown:
                lines.append(now)
                shown = now
            if lines:
                self.send(*lines)
        self.send("STOPPING=1")
