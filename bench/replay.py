"""Replay at scale: the DataManager replaying a whole 10M-row file (quick: 500k) as the Algorithm would
ask for it, for interleaved and book-sorted layouts with 100, 1,000 and 100,000 books (quick: 100,
1,000, 10,000).

For each file a DataManager is started alone (``--heartbeat-endpoint`` to our PULL socket, so its counters come
as messages) and one client steps through the ticks the way the Algorithm does: every book at every
tick, in ``WindowsRequest`` batches of up to 1,000 books, the next tick once the last reply came. Ticks
go by a stride (at most 2,000 ticks in all, a stride below the window so every point is still read),
to the end of the books' rows. Reported per file:

* **lines read per line of the file**: ``(lines_read + lines_caught_up) / lines``, from the
  DataManager's counters: 1 means every line was parsed once; the frontier reads each line once and
  catch-ups re-read what parked books need (sorted files: ~2 minus a window's share of each book).
* **reply latency** p50/p99 of the batches (every book of a tick, up to 1,000 per batch).
* **RSS** of the DataManager at the end (the largest seen while running is in the JSON).
* **largest event-loop stall**: a request that fails validation is answered by the receive loop
  without any reading, so its round trip, sent every 5 ms throughout by a thread of its own on a
  connection of its own, is how long the loop was busy elsewhere.
* books not answered within the DataManager's 10 s wait are asked again (as the Algorithm would at its
  next tick) and counted (``expired_retried``); any other error ends the run.

Files are generated under ``BENCH_DATA_DIR`` (default ``/tmp/bench-data``) by ``data/generate.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import zmq

from bench import common
from bench.common import Config, Outcome, Row
from bench.driver import private_dir
from bench.polling import wait_for
from transport import limits, protocol
from transport.protocol import Heartbeat, WindowsRequest

COUNT = 5
MAX_TICKS = 2000
PROBE_EVERY = 0.005
IDLE_PROBE = 2.0  # seconds of probing the idle DataManager first: the stall's baseline


def ensure_layout_csv(books: int, rows_per_book: int, layout: str) -> Path:
    """A generated CSV (seed 1), made once: ``interleaved`` (time order) or ``sorted`` (by book)."""
    if layout == "interleaved":
        return common.ensure_csv(books, rows_per_book)
    common.DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = common.DATA_DIR / f"b{books}_r{rows_per_book}_sorted.csv"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        subprocess.run([sys.executable, str(common.REPO / "data" / "generate.py"), "--books", str(books), "--rows",
                        str(rows_per_book), "--seed", "1", "--sorted", "-o", str(tmp)], check=True, cwd=common.REPO,
                       timeout=1800)
        tmp.rename(path)
    return path


class Prober:
    """The stall probe, in a thread of its own (with its own context): every 5 ms a request that fails
    validation, which the DataManager's receive loop answers without reading anything; the round trip
    is how long the loop was busy elsewhere. (In the replaying thread it would wait for that thread.)"""

    def __init__(self, endpoint: str) -> None:
        self.latencies: list[float] = []
        self._endpoint = endpoint
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="probe")
        self._thread.start()

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self._endpoint)
        request_id = 0
        try:
            while not self._stop.is_set():
                request_id += 1
                sent = time.monotonic()
                sock.send(msgpack.packb([protocol.PROTOCOL_VERSION, 2, request_id, "probe", 0, 0]))  # count 0
                while sock.poll(1000):
                    if msgpack.unpackb(sock.recv())[2] == request_id:
                        self.latencies.append(time.monotonic() - sent)
                        break
                self._stop.wait(PROBE_EVERY)
        finally:
            sock.close(0)
            ctx.term()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def replay(path: Path, books: int, rows_per_book: int, deadline_s: float) -> dict[str, Any]:
    ids = common.book_ids(books)
    stride = max(1, min(limits.WINDOW_MAX - COUNT - 1, -(-rows_per_book // MAX_TICKS)))
    ticks = list(range(0, rows_per_book - COUNT + 1, stride))
    batches = [tuple(ids[i:i + limits.BATCH_BOOKS_MAX]) for i in range(0, books, limits.BATCH_BOOKS_MAX)]
    with private_dir("br-") as directory:
        endpoint, beats = f"ipc://{directory}/dm.sock", f"ipc://{directory}/hb.sock"
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        pull = ctx.socket(zmq.PULL)
        pull.bind(beats)
        sock = ctx.socket(zmq.DEALER)
        for s in (pull, sock):
            s.setsockopt(zmq.LINGER, 0)
        counters: dict[str, int] = {}
        expired = 0  # books asked again after waiting 10 s, as the Algorithm would at its next tick
        latencies: list[float] = []
        rss_max = 0
        started = time.monotonic()
        with common.actor("data_manager", "--data-file", str(path), "--data-endpoint", endpoint,
                          "--heartbeat-endpoint", beats) as process:
            sock.connect(endpoint)
            ready = Prober(endpoint)  # wait until the DataManager answers (it is still starting)
            wait_for(lambda: bool(ready.latencies), 30, 0.05, "the DataManager to answer a probe")
            ready.stop()
            idle = Prober(endpoint)  # the baselines: the same DataManager before any request
            time.sleep(IDLE_PROBE)
            idle.stop()
            rss_idle = common.rss_kib(process.pid)
            prober = Prober(endpoint)
            try:
                request_id = 0
                for tick in ticks:
                    sent: dict[int, tuple[float, tuple[str, ...]]] = {}
                    queue = list(batches)
                    while queue or sent:
                        for batch in queue:
                            request_id += 1
                            sent[request_id] = (time.monotonic(), batch)
                            sock.send(protocol.encode(WindowsRequest(request_id, tick, COUNT, batch)))
                        queue = []
                        if time.monotonic() > started + deadline_s:
                            raise TimeoutError(f"replay of {path} did not finish within {deadline_s}s")
                        if not sock.poll(1000):
                            continue
                        # [version, type, request_id, tick, windows, errors]: only the id and the errors are
                        # read (decoding 5,000 Decimals a reply would make this harness the slow part)
                        _, _, reply_id, _, _, errors = msgpack.unpackb(sock.recv())
                        if reply_id not in sent:
                            continue
                        at, batch = sent.pop(reply_id)
                        latencies.append(time.monotonic() - at)
                        failed = [e for e in errors if e and not e.startswith("no answer within")]
                        if failed:
                            raise RuntimeError(f"tick {tick}: {len(failed)} books failed, e.g. {failed[0]}")
                        again = tuple(b for b, e in zip(batch, errors, strict=True) if e)
                        if again:
                            expired += len(again)
                            queue.append(again)
                    if tick % (stride * 50) == 0:
                        rss_max = max(rss_max, common.rss_kib(process.pid))
                seconds = time.monotonic() - started
                rss = common.rss_kib(process.pid)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and pull.poll(2000):  # the latest counters
                    beat = protocol.decode(pull.recv())
                    if isinstance(beat, Heartbeat) and beat.counters:
                        counters = beat.counters
                        if counters.get("lines_read", 0) >= books * rows_per_book:
                            break
            finally:
                prober.stop()
                sock.close(0)
                pull.close(0)
                ctx.term()
    lines = books * rows_per_book + 1
    return {"books": books, "rows": books * rows_per_book, "ticks": len(ticks), "stride": stride, "seconds": seconds,
            "lines_per_line": (counters.get("lines_read", 0) + counters.get("lines_caught_up", 0)) / lines,
            "latency_ms": common.summary_ms(latencies), "stall_ms": common.summary_ms(prober.latencies),
            "idle_stall_ms": common.summary_ms(idle.latencies), "rss_idle_kib": rss_idle, "rss_kib": rss,
            "rss_max_kib": max(rss, rss_max), "expired_retried": expired, "counters": counters}


def measure(cfg: Config) -> Outcome:
    rows = cfg.pick(500_000, 10_000_000)
    out = Outcome()
    for layout in ("interleaved", "sorted"):
        for books in cfg.pick((100, 1000, 10_000), (100, 1000, 100_000)):
            path = ensure_layout_csv(books, rows // books, layout)
            result = replay(path, books, rows // books, cfg.pick(600.0, 3600.0))
            out.raw[f"{layout}_{books}"] = result
            label = f"{layout}, {books:,} books, {rows / 1e6:g}M rows"
            lat, stall = result["latency_ms"], result["stall_ms"]
            sorted_file = layout == "sorted"
            out.rows.append(Row(f"replay {label}: lines read per line of the file", result["lines_per_line"], "",
                                target="~2" if sorted_file else "~1",
                                met=result["lines_per_line"] < (2.05 if sorted_file else 1.05),
                                note=f"{result['ticks']} ticks (stride {result['stride']}) in "
                                     f"{result['seconds']:.0f}s; {result['expired_retried']} book-requests asked "
                                     "again after 10 s"))
            out.rows.append(Row(f"replay {label}: batch reply p50 (up to 1,000 books; a tick's batches sent at once)",
                                lat["p50"], "ms", note=f"p99 {lat['p99']:.1f} ms, n={int(lat['n'])}"))
            idle = result["idle_stall_ms"]
            out.rows.append(Row(f"replay {label}: event-loop stall p99", stall["p99"], "ms", idle["p99"],
                                "the same DataManager idle", note=f"max {stall['max']:.0f} ms (idle: "
                                                                  f"{idle['max']:.0f} ms), n={int(stall['n'])}"))
            out.rows.append(Row(f"replay {label}: DataManager RSS", result["rss_kib"] / 1024, "MiB",
                                result["rss_idle_kib"] / 1024, "before the first request",
                                note=f"max {result['rss_max_kib'] / 1024:.0f} MiB"))
    return out
