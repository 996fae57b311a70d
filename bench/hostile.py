"""Hostile input: the decisions the system keeps while it is attacked, against the same run unattacked.

One launcher run prices 100 books on a 0.5 s tick (200 decisions/s offered, x = 0). It runs a quiet
phase (the baseline), then each attack in turn, each from a process of its own at full speed:

- ``dm_flood``: a DEALER sending valid requests to the DataManager as fast as it can;
- ``dm_cycling_flood``: valid requests for random old ticks from a new identity every 20 (issue 20),
  and the DataManager's memory 12 s after it against before it, and the decisions of the first tick
  after it (recovery within one tick);
- ``dm_cycling_windows``: the same with ``WindowsRequest``s of up to 50 books;
- ``garbage``: random frames to the DataManager's ROUTER, the Ledger's ROUTER and the launcher's
  heartbeat PULL;
- ``http_flood``: malformed HTTP to the APIServer on 16 connections;

and a second run, in follow mode, reads a fuzzed CSV (every tenth line random bytes) against a clean
one, then has its data file replaced by a FIFO for 4 s (``fifo_swap``); a third run
(:mod:`bench.hostile_local`) forges ticks, floods the launcher's events socket with subscriptions and
takes the Ledger's file away. For each:
the share of the offered (book, tick) pairs decided, as a ratio to the quiet phase, and how many
actors were restarted or killed as hung meanwhile (the target: none). On 2 cores the attacker takes
CPU from the system too, so a ratio below 1 is not all starvation: the restart count says whether
anything was starved.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from bench import common, flood
from bench.common import Config, Outcome, Row
from bench.driver import LauncherRun, private_dir
from repricer_supervisor.procfs import cpu_seconds, rss_kib
from transport import protocol
from transport.protocol import LastPricesRequest

BOOKS = 100
TICK = 0.5


# --- the attackers (each runs in a process of its own until killed) ----------------------------------


def dm_flood(endpoint: str) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.connect(endpoint)
    frames = [protocol.encode(LastPricesRequest(i, f"B{i % BOOKS + 1:03d}", i % 50, 5)) for i in range(1000)]
    i = 0
    while True:
        with contextlib.suppress(zmq.Again):
            sock.send(frames[i % 1000], zmq.NOBLOCK)
        i += 1
        if i % 100 == 0:  # read what came back, so the replies cannot block anything of ours
            while sock.poll(0):
                sock.recv()


def dm_cycling_flood(endpoint: str) -> None:
    """Valid requests for random old ticks, from a new identity every 20 (issue 20): no per-client
    budget of the DataManager ever fills."""
    flood.flood(endpoint, 3600.0, common.book_ids(BOOKS), 200, kind="old_ticks", cycle=20)


def dm_cycling_windows(endpoint: str) -> None:
    """The same with ``WindowsRequest``s of up to 50 books each: one message asks many windows."""
    flood.flood(endpoint, 3600.0, common.book_ids(BOOKS), 200, kind="windows", cycle=20)


def fifo_swap(path: str) -> None:
    """The data file replaced by a FIFO for 4 s, then put back (issue 20: in follow mode the DataManager's
    open used to wait for a writer for ever)."""
    aside = path + ".aside"
    os.rename(path, aside)
    os.mkfifo(path)
    time.sleep(4.0)
    os.unlink(path)
    os.rename(aside, path)
    while True:
        time.sleep(60)


def garbage(endpoints: list[str]) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sockets = []
    for endpoint, kind in zip(endpoints, (zmq.DEALER, zmq.DEALER, zmq.PUSH), strict=True):
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        sock.connect(endpoint)
        sockets.append(sock)
    rng = random.Random(1)
    blobs = [rng.randbytes(rng.randrange(1, 2000)) for _ in range(500)]
    i = 0
    while True:
        for sock in sockets:
            with contextlib.suppress(zmq.Again):
                sock.send(blobs[i % 500], zmq.NOBLOCK)
            while sock.socket_type == zmq.DEALER and sock.poll(0):
                sock.recv()
        i += 1


def http_flood(port: int) -> None:
    requests = [b"GET / HTTP/9.9\r\n\r\n", b"POST /register-request HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"x\"",
                b"\x16\x03\x01garbage\r\n\r\n", b"GET /request-data/%0a%0d HTTP/1.1\r\nHost: x\r\n\r\n"]
    i = 0
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                conn.sendall(requests[i % len(requests)])
                conn.recv(4096)
        except OSError:
            time.sleep(0.001)
        i += 1


def _run_attack(target: Callable[..., None], args: tuple[Any, ...], workers: int = 1) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=args, daemon=True) for _ in range(workers)]
    for process in processes:
        process.start()
    return processes


def _stop(processes: list[Any]) -> None:
    for process in processes:
        process.kill()
        process.join(5)


# --- measuring ---------------------------------------------------------------------------------------


def _kept(run: LauncherRun, t0: float, since: float, until: float) -> float:
    """The share of (book, tick) pairs scheduled within [since, until) that were decided."""
    first = max(0, int((since - t0) / TICK) + 1)
    last = int((until - t0) / TICK) - 1  # the last tick has had time to be decided
    if last < first:
        return float("nan")
    decided = {(d["book"], d["tick"]) for d in run.decisions() if first <= d["tick"] <= last}
    return len(decided) / ((last - first + 1) * BOOKS)


def _disturbed(run: LauncherRun, since: float) -> int:
    return sum(1 for e in run.events() if e.ts >= since and e.event in ("exited", "hung"))


Attack = tuple[Callable[..., None], tuple[Any, ...], int]


Phase = tuple[float, int, float]  # decisions kept during it, restarts or hangs, kept in the first tick after


def _phase(run: LauncherRun, t0: float, seconds: float, attack: Attack | None,
           cpu: dict[str, float] | None = None) -> Phase:
    """``cpu``: filled with the share of a core the DataManager and the attacker took meanwhile."""
    start = time.time()
    processes = _run_attack(*attack) if attack else []
    dm = run.pids()["datamanager"]
    before = [cpu_seconds(dm), *(cpu_seconds(p.pid) for p in processes)]
    try:
        time.sleep(seconds)  # the attack runs for a fixed time: that is what is measured
        if cpu is not None:
            after = [cpu_seconds(dm), *(cpu_seconds(p.pid) for p in processes)]
            cpu["datamanager"] = (after[0] - before[0]) / seconds
            cpu["attacker"] = sum(after[1:]) / seconds - sum(before[1:]) / seconds
    finally:
        _stop(processes)
    end = time.time()
    time.sleep(3 * TICK)  # the last ticks' decisions come in (and the first tick's after it)
    return _kept(run, t0, start + 1.0, end), _disturbed(run, start), _kept(run, t0, end, end + 2 * TICK)


def _csv(path: Path, rows: int, fuzz: bool) -> Path:
    rng = random.Random(7)
    with open(path, "wb") as f:
        f.write(b"timestamp,book_id,price\n")
        for i in range(rows):
            for book in common.book_ids(BOOKS):
                f.write(f"t{i},{book},{10 + (i * 7 + len(book)) % 13}.{i % 100:02d}\n".encode())
                if fuzz and rng.random() < 0.1:
                    f.write(rng.randbytes(rng.randrange(1, 300)).replace(b"\n", b"\r") + b"\n")
    return path


def _launch(directory: Path, csv_path: Path, *extra: str) -> tuple[LauncherRun, float]:
    books = common.write_books_file(directory, BOOKS)
    run = LauncherRun(["--data-file", str(csv_path), "--books-file", str(books), "--tick", str(TICK), "--delay", "0",
                       "--hang-timeout", "3", *extra], directory)
    run.wait_for_actors(["scheduler", "datamanager", "apiserver", "ledger", "algorithm"])
    run.wait_decisions(BOOKS * 2, timeout=60)
    return run, _t0(run)


def _t0(run: LauncherRun) -> float:
    """The run's t0, from a decision's tick and time (ticks are due at t0 + seq * TICK)."""
    received_at, decision = run.timed_decisions()[-1]
    seq: int = decision["tick"]
    return received_at - seq * TICK - 0.25 * TICK


def measure(config: Config) -> Outcome:
    seconds = config.pick(8.0, 30.0)
    outcome = Outcome()
    rows = int(2 * (2 * seconds * 5 + 60) / TICK)
    with private_dir("bh-") as directory:
        clean = _csv(directory / "clean.csv", rows, fuzz=False)
        run, t0 = _launch(directory, clean)
        try:
            base, base_restarts, _ = _phase(run, t0, seconds, None)
            attacks: dict[str, Attack] = {
                "dm_flood": (dm_flood, (f"ipc://{directory}/data-0.sock",), 1),
                "dm_cycling_flood": (dm_cycling_flood, (f"ipc://{directory}/data-0.sock",), 1),
                "dm_cycling_windows": (dm_cycling_windows, (f"ipc://{directory}/data-0.sock",), 1),
                "garbage": (garbage, ([f"ipc://{directory}/data-0.sock", f"ipc://{directory}/ledger.sock",
                                       f"ipc://{directory}/heartbeat.sock"],), 1),
                "http_flood": (http_flood, (run.api_port,), 1),
            }
            results: dict[str, Phase] = {}
            memory: dict[str, tuple[int, int]] = {}
            shed: dict[str, int] = {}
            cpu: dict[str, dict[str, float]] = {}
            for name, attack in attacks.items():
                rss_before = rss_kib(run.pids()["datamanager"])
                shed_before = run.counters("datamanager").get("shed", 0)
                cpu[name] = {}
                results[name] = _phase(run, t0, seconds, attack, cpu[name])
                if name.startswith("dm_cycling"):  # the memory a flood took must come back (trimmed once it is over)
                    time.sleep(10.0)
                    memory[name] = (rss_before, rss_kib(run.pids()["datamanager"]))
                    shed[name] = run.counters("datamanager").get("shed", 0) - shed_before  # the attack did come
            assert run.stop() == 0
        finally:
            run.kill_everything()
    with private_dir("bf-") as directory:
        fuzzed = _csv(directory / "fuzzed.csv", rows, fuzz=True)
        run, t0 = _launch(directory, fuzzed, "--mode", "follow")  # follow mode: the FIFO swap's case too
        try:
            results["fuzzed_csv"] = _phase(run, t0, seconds, None)
            bad_rows = run.counters("datamanager").get("bad_rows", 0)
            results["fifo_swap"] = _phase(run, t0, seconds, (fifo_swap, (str(fuzzed),), 1))
            assert run.stop() == 0
        finally:
            run.kill_everything()
    for name, (rss_before, rss_after) in memory.items():
        outcome.rows.append(Row(f"hostile: DataManager RSS 12 s after {name}", rss_after / 1024, "MiB",
                                rss_before / 1024, "before it, same run", "<= 1.10x", rss_after <= 1.10 * rss_before,
                                f"requests shed during it: {shed[name]}; CPU during it (cores): DataManager "
                                f"{cpu[name]['datamanager']:.2f}, attacker {cpu[name]['attacker']:.2f}"))
    outcome.raw = {"seconds": seconds, "baseline": base, "baseline_restarts": base_restarts, "dm_rss_kib": memory,
                   "shed": shed, "cpu_cores": cpu,
                   "attacks": {k: {"kept": v[0], "restarts": v[1], "first_tick_after": v[2]}
                               for k, v in results.items()},
                   "fuzzed_bad_rows": bad_rows, "pid": os.getpid()}
    for name, (kept, restarts, after) in results.items():
        outcome.rows.append(Row(f"hostile: decisions kept during {name} ({seconds:.0f} s, {BOOKS} books, "
                                f"{TICK} s tick)", kept, "of offered", base, "quiet phase, same run",
                                ">= 0.95x, no restart", kept >= 0.95 * base and restarts == 0,
                                f"restarts/hangs during it: {restarts}"))
        if name.startswith("dm_cycling"):
            outcome.rows.append(Row(f"hostile: decisions kept in the first tick after {name}", after, "of offered",
                                    base, "quiet phase, same run", ">= 0.95x", after >= 0.95 * base))
    return outcome
