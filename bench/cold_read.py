"""DataManager cold read: how fast it reads a big CSV (10M rows in full mode, 1M in quick mode), and
how long its event loop stalls meanwhile.

* DataManager rows/s: the DataManager alone is started on the file and immediately asked for a tick
  far in the future of the book whose rows end the file -- it can answer only after reading every
  row; rows / (reply time - process start).
* the same file read in this process by a plain ``for line in file`` loop and by a ``csv.reader``
  loop (page cache warm for all three).
* stall: while the big read runs, a request for a window already in memory (book 1, tick 0) is sent
  every ~5 ms; its reply latency p50/p99/max.
* for comparison, a reader *thread* parsing with ``csv.reader`` while an asyncio loop runs a 1 ms
  ticker: the ticker's lateness (the GIL hands the loop only switch-interval slices).
"""

from __future__ import annotations

import asyncio
import csv
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from bench import common, driver
from bench.common import Config, Outcome, Row
from repricer_supervisor.procfs import rss_kib
from transport import protocol
from transport.protocol import LastPricesReply, LastPricesRequest

BOOKS = 5
FAR_TICK = 10**9
PROBE_EVERY = 0.005


def plain_loop(path: Path) -> float:
    """Rows per second of ``for line in file`` (text mode, like any plain script)."""
    start = time.perf_counter()
    n = 0
    with open(path, encoding="utf-8") as f:
        for _line in f:
            n += 1
    return (n - 1) / (time.perf_counter() - start)


def csv_loop(path: Path) -> float:
    start = time.perf_counter()
    n = 0
    with open(path, encoding="utf-8", newline="") as f:
        for _row in csv.reader(f):
            n += 1
    return (n - 1) / (time.perf_counter() - start)


def dm_read(path: Path, rows: int, deadline_s: float) -> dict[str, Any]:
    """Start a DataManager on ``path``; time until it answers a request needing the whole file, and
    probe a window in memory every 5 ms meanwhile. Its RSS once the file is read."""
    last_book = common.book_ids(BOOKS)[-1]
    first_book = common.book_ids(BOOKS)[0]
    with driver.private_dir("bn-") as directory:
        endpoint = f"ipc://{directory}/dm.sock"
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        start = time.monotonic()
        with common.actor("data_manager", "--data-file", str(path), "--data-endpoint", endpoint) as process:
            try:
                sock.connect(endpoint)  # messages queue until the DataManager binds
                sock.send(protocol.encode(LastPricesRequest(1, last_book, FAR_TICK, 5)))
                sent: dict[int, float] = {}
                big_ids = {1}
                retries = 0
                probe_id = 2
                next_probe = time.monotonic()
                in_memory_at: float | None = None
                probes: list[float] = []  # latencies of probes sent after the window was in memory
                done_at: float | None = None
                reply_error = ""
                limit = start + deadline_s
                while done_at is None and time.monotonic() < limit:
                    now = time.monotonic()
                    if now >= next_probe:
                        sock.send(protocol.encode(LastPricesRequest(probe_id, first_book, 0, 5)))
                        sent[probe_id] = now
                        probe_id += 1
                        next_probe += PROBE_EVERY
                        if next_probe < now:
                            next_probe = now + PROBE_EVERY
                    if not sock.poll(max(0, int((next_probe - time.monotonic()) * 1000)) + 1):
                        continue
                    while True:
                        try:
                            frame = sock.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        at = time.monotonic()
                        reply = protocol.decode(frame)
                        assert isinstance(reply, LastPricesReply)
                        if reply.request_id in big_ids:
                            if reply.error.startswith("no answer within"):
                                # The DataManager expires waiters after 10 s (a real client retries
                                # after 1 s anyway): ask again, keep the clock running.
                                big_ids.add(probe_id)
                                sock.send(protocol.encode(LastPricesRequest(probe_id, last_book, FAR_TICK, 5)))
                                probe_id += 1
                                retries += 1
                                continue
                            done_at, reply_error = at, reply.error
                            break
                        was = sent.pop(reply.request_id, None)
                        if was is None or reply.error:
                            continue
                        if in_memory_at is None:
                            in_memory_at = at
                        elif was >= in_memory_at:
                            probes.append(at - was)
                if done_at is None:
                    raise TimeoutError(f"the DataManager did not finish reading {path} within {deadline_s}s")
                if reply_error:
                    raise RuntimeError(f"DataManager error: {reply_error}")
                time.sleep(0.2)
                rss = rss_kib(process.pid)
            finally:
                sock.close(0)
                ctx.term()
    elapsed = done_at - start
    return {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed, "rss_kib": rss,
            "stall_ms": common.summary_ms(probes), "lost_probes": len(sent), "expired_retries": retries}


def dm_rss(rows_per_book: int) -> dict[str, Any]:
    """The DataManager's RSS after reading a whole generated file of BOOKS x rows_per_book rows."""
    path = common.ensure_csv(BOOKS, rows_per_book)
    rows = BOOKS * rows_per_book
    return common.cached(f"dm_read:{rows}", lambda: dm_read(path, rows, 900.0))


def thread_demo(path: Path, seconds: float) -> dict[str, Any]:
    """A csv.reader thread while an asyncio loop runs a 1 ms ticker: the ticker's lateness."""

    async def ticker(duration: float, with_reader: bool) -> list[float]:
        stop = threading.Event()
        rows = 0

        def read() -> None:
            nonlocal rows
            with open(path, encoding="utf-8", newline="") as f:
                for _row in csv.reader(f):
                    rows += 1
                    if stop.is_set():
                        return

        thread = threading.Thread(target=read, daemon=True) if with_reader else None
        if thread is not None:
            thread.start()
        late: list[float] = []
        end = time.monotonic() + duration
        try:
            while time.monotonic() < end and (thread is None or thread.is_alive()):
                due = time.monotonic() + 0.001
                await asyncio.sleep(0.001)
                late.append(time.monotonic() - due)
        finally:
            stop.set()
            if thread is not None:
                thread.join(10.0)
        return late

    alone = asyncio.run(ticker(1.0, False))
    with_thread = asyncio.run(ticker(seconds, True))
    return {"alone_ms": common.summary_ms(alone), "thread_ms": common.summary_ms(with_thread)}


def measure(cfg: Config) -> Outcome:
    rows_per_book = cfg.pick(200_000, 2_000_000)
    rows = BOOKS * rows_per_book
    path = common.ensure_csv(BOOKS, rows_per_book)
    plain = plain_loop(path)
    csv_rate = csv_loop(path)
    dm = dm_rss(rows_per_book)
    demo = thread_demo(path, cfg.pick(3.0, 8.0))
    out = Outcome(raw={"rows": rows, "plain_rows_per_s": plain, "csv_reader_rows_per_s": csv_rate, "dm": dm,
                       "thread_demo": demo})
    label = f"{rows / 1e6:g}M rows"
    out.rows.append(Row(f"DataManager cold read, {label} (rows/s, start to reply)", dm["rows_per_s"], "rows/s",
                        plain, "plain for-line loop", ">= 0.5x plain loop", met=dm["rows_per_s"] >= 0.5 * plain,
                        note=f"{dm['seconds']:.1f}s"))
    out.rows.append(Row(f"DataManager cold read vs csv.reader loop, {label}", dm["rows_per_s"], "rows/s",
                        csv_rate, "csv.reader loop"))
    out.rows.append(Row("plain `for line in file` loop", plain, "rows/s"))
    out.rows.append(Row("csv.reader loop", csv_rate, "rows/s"))
    s = dm["stall_ms"]
    out.rows.append(Row("stall during cold read: in-memory request latency p50 (every 5 ms)", s["p50"], "ms",
                        note=f"n={int(s['n'])}"))
    out.rows.append(Row("stall during cold read: p99", s["p99"], "ms", target="< 10 ms", met=s["p99"] < 10.0))
    out.rows.append(Row("stall during cold read: max", s["max"], "ms"))
    t = demo["thread_ms"]
    out.rows.append(Row("for comparison: 1 ms ticker lateness max, csv.reader in a thread", t["max"], "ms",
                        demo["alone_ms"]["max"], "ticker alone", note=f"p99 {t['p99']:.2f} ms"))
    return out
