"""Drive the real ``launcher.py`` from outside, as the tests and the benchmarks do: start it as a
subprocess with a private ``--events-endpoint``, collect its decisions (stdout) as they arrive, follow
its :class:`SupervisorEvent` and :class:`ActorStatus` messages (which actor runs under which pid,
every exit, restart and hang, every process's counters and memory), and wait on any of it with a
deadline.

Nothing here reads the launcher's log for control: stderr is kept (a bounded tail) only to show in a
failure message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal, Self, TypeVar

import zmq

from bench.polling import wait_for
from repricer_supervisor.procfs import alive
from transport import protocol
from transport.protocol import ActorStatus, LastPricesReply, LastPricesRequest, ProtocolError, SupervisorEvent
from transport.roles import DASHBOARD, EVENTS
from transport.security import Keys, Security
from transport.sockets import EVENTS_HWM, Sockets

T = TypeVar("T")
REPO: Final = Path(__file__).resolve().parent.parent
LOG_TAIL: Final = 2000  # stderr lines kept, for failure messages
HISTORY: Final = 200_000  # events and statuses kept (a long soak must not grow without bound)
END_WAIT: Final = 3.0  # after the launcher exits, how long its last events may take to arrive
DecisionSink = Callable[[float, bytes], None]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def private_dir(prefix: str = "rp-") -> Iterator[Path]:
    """A fresh directory under /tmp, short enough for ipc:// paths (unix sockets allow ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _option(args: Sequence[str], flag: str) -> str | None:
    """The value given to ``flag`` in ``args`` (``--flag V`` or ``--flag=V``), None if absent."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def wants_dashboard(args: Sequence[str]) -> bool:
    """Whether a launcher command line asks for the Dashboard explicitly."""
    return "--dashboard" in args or "dashboard" in (_option(args, "--run") or "").split(",")


class EventFeed:
    """A SUB to the launcher's ``--events-endpoint``, read in a thread; every update under ``lock``."""

    def __init__(self, endpoint: str, lock: threading.Condition, keys: str | None) -> None:
        self.events: deque[SupervisorEvent] = deque(maxlen=HISTORY)
        self.statuses: deque[ActorStatus] = deque(maxlen=HISTORY)
        self.latest: dict[str, ActorStatus] = {}  # the newest status of each actor
        self.pids: dict[str, int] = {}  # the newest pid of each actor (launcher excluded)
        self.seen_pids: set[int] = set()  # every actor pid seen in this run
        self.end: SupervisorEvent | None = None  # the launcher's own "stopped", its last word
        self.bad_frames = 0
        self.on_message: Callable[[SupervisorEvent | ActorStatus], None] | None = None
        self._lock = lock
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        # With keys, a reader of the events as the Dashboard is (the one role the events socket admits).
        security = Security(Keys.load(keys, DASHBOARD) if keys else None)
        self._sock = Sockets(self._ctx, security).sub(endpoint, EVENTS_HWM, channel=EVENTS)
        self._sock.setsockopt(zmq.RECONNECT_IVL, 10)  # connected before the launcher binds: join it quickly
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="events")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(50):
                continue
            for _ in range(1000):  # bounded, then look at the stop flag again
                try:
                    frame = self._sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_frame(frame)

    def _on_frame(self, frame: bytes) -> None:
        try:
            message = protocol.decode(frame)
        except ProtocolError:
            message = None
        with self._lock:
            if isinstance(message, SupervisorEvent):
                self.events.append(message)
                if message.actor == "launcher":
                    self.end = message if message.event == "stopped" else self.end
                elif message.pid:
                    self._saw(message.actor, message.pid)
            elif isinstance(message, ActorStatus):
                self.statuses.append(message)
                self.latest[message.actor] = message
                if message.pid and message.actor != "launcher":
                    self._saw(message.actor, message.pid)
            else:
                self.bad_frames += 1
                return
            if self.on_message is not None:
                self.on_message(message)
            self._lock.notify_all()

    def _saw(self, actor: str, pid: int) -> None:
        self.pids[actor] = pid  # messages arrive in the order the launcher sent them: the newest wins
        self.seen_pids.add(pid)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self._sock.close(linger=0)
        self._ctx.term()


class LauncherRun:
    """One ``python launcher.py --json ...`` run, followed through its events.

    With ``run_dir``, the launcher gets private ipc endpoints there (``--run-dir``) and a free API
    port; without, ``args`` say where everything is. ``on_decision(received_at, line)`` gets each
    decision line instead of it being kept (for long runs)."""

    def __init__(self, args: Sequence[str], run_dir: Path | None = None, status_every: float | None = None,
                 env: dict[str, str] | None = None, on_decision: DecisionSink | None = None,
                 on_message: Callable[[SupervisorEvent | ActorStatus], None] | None = None,
                 on_log: Callable[[str], None] | None = None) -> None:
        if _option(args, "--events-endpoint") is not None or _option(args, "--events") is not None:
            raise ValueError("the driver gives the launcher its own --events-endpoint: see events_endpoint")
        self._dir = Path(tempfile.mkdtemp(prefix="rd-", dir="/tmp"))  # the events endpoint's own place
        self.api_port = free_port()
        private = ["--run-dir", str(run_dir), "--api-port", str(self.api_port)] if run_dir is not None else []
        if status_every is not None:
            private += ["--status-every", str(status_every)]
        self.events_endpoint = endpoint = f"ipc://{self._dir}/events.sock"
        self._changed = threading.Condition()
        self.feed = EventFeed(endpoint, self._changed, _option(args, "--keys"))
        self.feed.on_message = on_message
        self._lines: list[tuple[float, bytes]] = []
        self._parsed: list[dict[str, Any]] = []
        self._on_decision = on_decision
        self._on_log = on_log
        self._log: deque[str] = deque(maxlen=LOG_TAIL)
        if not wants_dashboard(args):
            # The Dashboard binds a fixed HTTP port: runs that do not look at it leave it out.
            private.append("--no-dashboard")
        command = [sys.executable, str(REPO / "launcher.py"), "--json", "--events-endpoint", endpoint, *private, *args]
        self.started_at = time.time()
        # A session of its own, so that a failed run can be killed as a group.
        self.process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                                        start_new_session=True)
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True, name="stdout"),
                         threading.Thread(target=self._read_stderr, daemon=True, name="stderr")]
        for reader in self._readers:
            reader.start()
        self._finished = False

    # --- readers -----------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        clock = time.time
        for line in self.process.stdout:
            at = clock()
            if self._on_decision is not None:
                self._on_decision(at, line)
                continue
            with self._changed:
                self._lines.append((at, line))
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if self._on_log is not None:
                self._on_log(line)  # every line, where the kept tail holds only the newest
            with self._changed:
                self._log.append(line)

    # --- what the run said ---------------------------------------------------------------------------

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision printed so far (parsed once, as needed)."""
        with self._changed:
            self._parsed.extend(json.loads(line) for _, line in self._lines[len(self._parsed):])
            return list(self._parsed)

    def timed_decisions(self) -> list[tuple[float, dict[str, Any]]]:
        """Every decision printed so far, with the wall time our reader received it."""
        decisions = self.decisions()
        with self._changed:
            return [(at, decision) for (at, _), decision in zip(self._lines, decisions, strict=False)]

    def decision_count(self) -> int:
        with self._changed:
            return len(self._lines)

    def pids(self) -> dict[str, int]:
        """The newest pid of each actor."""
        with self._changed:
            return dict(self.feed.pids)

    def every_pid(self) -> set[int]:
        """Every actor pid of this run, restarted ones included."""
        with self._changed:
            return set(self.feed.seen_pids)

    def events(self, event: str | None = None, actor: str | None = None) -> list[SupervisorEvent]:
        with self._changed:
            return [e for e in self.feed.events if (event is None or e.event == event)
                    and (actor is None or e.actor == actor)]

    def statuses(self) -> list[ActorStatus]:
        with self._changed:
            return list(self.feed.statuses)

    def counters(self, prefix: str) -> dict[str, int]:
        """The newest counters of every actor named ``prefix``* (or of the launcher itself), summed."""
        total: dict[str, int] = {}
        with self._changed:
            for name, status in self.feed.latest.items():
                if name.startswith(prefix):
                    for key, value in status.counters.items():
                        total[key] = total.get(key, 0) + value
        return total

    @property
    def log(self) -> list[str]:
        """The newest stderr lines (at most LOG_TAIL), to show or to check what was said, never to steer."""
        with self._changed:
            return list(self._log)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log[-lines:])

    # --- waiting -----------------------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], T | Literal[False] | None], timeout: float, what: str,
                   launcher_must_run: bool = True) -> T:
        """The predicate's first truthy value; AssertionError after ``timeout`` seconds, or as soon as
        the launcher has exited if ``launcher_must_run`` (nothing more will come). Looked at again
        whenever an event or a line arrives, and every 0.1 s."""
        def ready() -> T | Literal[False] | None:
            result = predicate()
            if not result and launcher_must_run and (code := self.process.poll()) is not None:
                raise AssertionError(f"the launcher exited (code {code}) while waiting for {what}; stderr "
                                     f"tail:\n{self.log_tail()}")
            return result

        with self._changed:
            return wait_for(ready, timeout, 0.1, what, pause=self._changed.wait,
                            details=lambda: f"stderr tail:\n{self.log_tail()}")

    def wait_for_actors(self, names: Sequence[str], timeout: float = 20.0) -> dict[str, int]:
        """Wait until every actor in ``names`` runs; their pids."""
        def running() -> dict[str, int] | None:
            pids = self.pids()
            return pids if set(names) <= set(pids) else None

        return self.wait_until(running, timeout, f"actors {list(names)} to start")

    def wait_actors(self, count: int, timeout: float = 20.0) -> dict[str, int]:
        def running() -> dict[str, int] | None:
            pids = self.pids()
            return pids if len(pids) >= count else None

        return self.wait_until(running, timeout, f"{count} actors to start")

    def wait_decisions(self, more_than: int, timeout: float = 20.0) -> None:
        self.wait_until(lambda: self.decision_count() > more_than, timeout, f"more than {more_than} decisions")

    def wait_restart(self, actor: str, old_pid: int, timeout: float = 20.0) -> int:
        """Wait until ``actor`` runs under a pid other than ``old_pid``; that pid."""
        return self.wait_until(lambda: (p := self.pids().get(actor, old_pid)) != old_pid and p, timeout,
                               f"{actor} to be restarted")

    # --- ending ----------------------------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the launcher, wait for it to exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        """Wait for the launcher to exit on its own (``--duration``), then for its last events."""
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5.0)
        if code in (0, 2):  # a clean exit ends with the launcher's own "stopped" event
            with contextlib.suppress(AssertionError):
                self.wait_until(lambda: self.feed.end, END_WAIT, "the launcher's last event", False)
        self._finish()
        return code

    def kill_everything(self) -> None:
        """Last-resort cleanup so a failed run leaves no process behind."""
        for pid in self.every_pid():
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10.0)
        self._finish()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        for reader in self._readers:
            reader.join(5.0)
        self.feed.close()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.process.poll() is None:
                self.stop()
        finally:
            self.kill_everything()


# --- probes: is a peer answering? ------------------------------------------------------------------


def wait_http(url: str, timeout: float = 15.0) -> float:
    """Wait until ``url`` answers anything over HTTP; the wall time it did."""
    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            return False

    wait_for(answers, timeout, 0.01, f"{url} to answer")
    return time.time()


def dm_request(endpoint: str, book: str, tick: int, timeout: float, count: int = 5) -> tuple[LastPricesReply, float]:
    """One LastPricesRequest on a fresh DEALER; the reply and its round trip in seconds."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        start = time.monotonic()
        sock.send(protocol.encode(LastPricesRequest(1, book, tick, count)))
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no reply from {endpoint} for {book}@{tick} within {timeout}s")
        reply = protocol.decode_as(sock.recv(), LastPricesReply)
        return reply, time.monotonic() - start
    finally:
        sock.close(0)
        ctx.term()


def wait_data_manager(endpoint: str, book: str, timeout: float = 15.0) -> float:
    """Wait until the DataManager at ``endpoint`` answers a request; the wall time it did."""
    def answers() -> bool:
        try:
            dm_request(endpoint, book, 0, 0.05)
        except TimeoutError:
            return False
        return True

    wait_for(answers, timeout, 0, f"the DataManager at {endpoint} to answer")  # each try waits 50 ms already
    return time.time()


@contextlib.contextmanager
def launched(args: Sequence[str], status_every: float | None = None, **kwargs: Any) -> Iterator[LauncherRun]:
    """A run with private ipc endpoints in a fresh directory, stopped (and cleaned up) on exit."""
    with private_dir() as directory, LauncherRun(args, directory, status_every, **kwargs) as run:
        yield run
