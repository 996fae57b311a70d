"""Replay at scale: the DataManager replaying a whole 10M-row file (quick: 500k) as the Algorithm would
ask for it, for interleaved and book-sorted layouts with 100, 1,000 and 100,000 books (quick: 100,
1,000, 10,000).

For each file a DataManager is started alone (``--heartbeat`` to our PULL socket, so its counters come
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
  without any reading, so its round trip, sent every 5 ms throughout, is how long the loop was busy
  elsewhere.

Files are generated under ``BENCH_DATA_DIR`` (default ``/tmp/bench-data``) by ``data/generate.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import zmq

from bench import common
from bench.common import Config, Outcome, Row
from transport import limits, protocol
from transport.protocol import Heartbeat, LastPricesReply, WindowsReply, WindowsRequest

COUNT = 5
MAX_TICKS = 2000
PROBE_EVERY = 0.005


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


def replay(path: Path, books: int, rows_per_book: int, deadline_s: float) -> dict[str, Any]:
    ids = common.book_ids(books)
    stride = max(1, min(limits.WINDOW_MAX - COUNT - 1, -(-rows_per_book // MAX_TICKS)))
    ticks = list(range(0, rows_per_book - COUNT + 1, stride))
    batches = [tuple(ids[i:i + limits.BATCH_BOOKS_MAX]) for i in range(0, books, limits.BATCH_BOOKS_MAX)]
    with common.run_dir() as directory:
        endpoint, beats = f"ipc://{directory}/dm.sock", f"ipc://{directory}/hb.sock"
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        pull = ctx.socket(zmq.PULL)
        pull.bind(beats)
        sock = ctx.socket(zmq.DEALER)
        for s in (pull, sock):
            s.setsockopt(zmq.LINGER, 0)
        counters: dict[str, int] = {}
        latencies: list[float] = []
        stalls: list[float] = []
        rss_max = 0
        started = time.monotonic()
        with common.actor("data_manager", "--csv", str(path), "--data", endpoint, "--heartbeat", beats) as process:
            try:
                sock.connect(endpoint)
                request_id = 0
                probe_sent: dict[int, float] = {}
                next_probe = time.monotonic()
                limit = started + deadline_s
                for tick in ticks:
                    sent: dict[int, float] = {}
                    for batch in batches:
                        request_id += 1
                        sent[request_id] = time.monotonic()
                        sock.send(protocol.encode(WindowsRequest(request_id, tick, COUNT, batch)))
                    while sent:
                        now = time.monotonic()
                        if now > limit:
                            raise TimeoutError(f"replay of {path} did not finish within {deadline_s}s")
                        if now >= next_probe:
                            request_id += 1
                            probe_sent[request_id] = now
                            # count 0 is invalid: the receive loop answers it without reading anything
                            sock.send(msgpack.packb([protocol.PROTOCOL_VERSION, 2, request_id, "probe", 0, 0]))
                            next_probe = max(next_probe + PROBE_EVERY, now)
                        if not sock.poll(max(1, int((next_probe - time.monotonic()) * 1000))):
                            continue
                        while True:
                            try:
                                reply = protocol.decode(sock.recv(zmq.NOBLOCK))
                            except zmq.Again:
                                break
                            at = time.monotonic()
                            if isinstance(reply, WindowsReply) and reply.request_id in sent:
                                latencies.append(at - sent.pop(reply.request_id))
                                failed = [e for e in reply.errors if e]
                                if failed:
                                    raise RuntimeError(f"tick {tick}: {len(failed)} books failed, e.g. {failed[0]}")
                            elif isinstance(reply, LastPricesReply) and reply.request_id in probe_sent:
                                stalls.append(at - probe_sent.pop(reply.request_id))
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
                sock.close(0)
                pull.close(0)
                ctx.term()
    lines = books * rows_per_book + 1
    return {"books": books, "rows": books * rows_per_book, "ticks": len(ticks), "stride": stride, "seconds": seconds,
            "lines_per_line": (counters.get("lines_read", 0) + counters.get("lines_caught_up", 0)) / lines,
            "latency_ms": common.summary_ms(latencies), "stall_ms": common.summary_ms(stalls),
            "rss_kib": rss, "rss_max_kib": max(rss, rss_max), "counters": counters}


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
            out.rows.append(Row(f"replay {label}: lines read per line of the file", result["lines_per_line"], "",
                                target="~1 (sorted: < 2)", met=result["lines_per_line"] < (1.05 if layout ==
                                                                                          "interleaved" else 2.0),
                                note=f"{result['ticks']} ticks (stride {result['stride']}) in "
                                     f"{result['seconds']:.0f}s"))
            out.rows.append(Row(f"replay {label}: reply p50 / p99 (a batch of up to 1,000 books)", lat["p50"], "ms",
                                note=f"p99 {lat['p99']:.1f} ms, n={int(lat['n'])}"))
            out.rows.append(Row(f"replay {label}: largest event-loop stall", stall["max"], "ms",
                                note=f"p99 {stall['p99']:.1f} ms, n={int(stall['n'])}"))
            out.rows.append(Row(f"replay {label}: DataManager RSS", result["rss_kib"] / 1024, "MiB",
                                note=f"max {result['rss_max_kib'] / 1024:.0f} MiB"))
    return out
