"""The Ledger: how fast it keeps decisions, how long its event loop stalls meanwhile, how much disk a
decision takes, and whether its memory stays flat.

* insert rate: the Ledger alone (``python -m actors.ledger``, default options: WAL, fsync per commit)
  is sent N realistic decisions in batches of 200 (``limits.LEDGER_BATCH_MAX``) by a DEALER keeping 4
  batches in flight, as the Algorithm's client does; decisions/s from the first send to the last
  acknowledgement. Baseline, same run, same rows, same pragmas: a bare ``sqlite3`` ``executemany`` into
  the same ``decisions`` table, one transaction per batch (no protocol, no checks, no ``pairs``). The
  two alternate, ``ROUNDS`` times each (the machine is shared: a neighbour's burst hits one round, not
  one side), and the medians are compared. The Ledger's CPU per decision is read per thread from
  /proc: its event loop (reading batches) and its database thread (SQLite), which run in parallel.
* stall: a probe (an empty LastDecidedRequest, answered on the Ledger's event loop without the
  database) every 5 ms; its reply latency p50/p99/max while the Ledger inserts at the rate of 10,000
  books per 5 s tick and while it inserts flat out, against the same probe while it is idle.
* bytes per decision: the database file (after a checkpoint) / rows, and from it the disk a 6-hour run
  of 10,000 books on a 5 s tick needs (43.2M decisions).
* writes first: the same insert run while a Dashboard reads the Ledger over its socket flat out
  (``LedgerQuery``: a books page sorted by price, the business reading, a pair's newest 1,000
  decisions, in turn, ``READS_IN_FLIGHT`` at a time, each sent when the last answer came), against the
  run without reads, alternating in the same rounds: the insert rate with reads over the rate without.
* RSS: the Ledger's RSS sampled every second through a sustained stream at 2,000 decisions/s (10,000
  books per 5 s tick) with row retention on (so deletes run too); growth after a warm-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import statistics
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

from actors.algorithm.clients.outbox import LedgerPolicy
from actors.ledger import schema
from bench import common
from bench.common import Config, Outcome, Row
from bench.driver import private_dir
from transport import limits, protocol
from transport.protocol import (
    Decision,
    LastDecidedReply,
    LastDecidedRequest,
    LedgerAck,
    LedgerBatch,
    LedgerQuery,
    LedgerQueryReply,
    QueryStatus,
)
from transport.roles import LEDGER_CHANNEL
from transport.security import Keys, Security

BATCH = limits.LEDGER_BATCH_MAX
IN_FLIGHT = LedgerPolicy().in_flight  # as a worker sends them
PROBE_EVERY = 0.005
SIX_HOURS_AT_10K_BOOKS = 6 * 3600 // 5 * 10_000  # 43.2M decisions
RATE_10K_BOOKS = 10_000 / 5  # decisions per second
WARMUP_SAMPLES = 5
ROUNDS = 3
T0 = 1_790_000_000.0
READS_IN_FLIGHT = 2  # a Dashboard with a few browsers open
READS = (("books", ("", "price", True, 0, 50, "all", None, 2000)), ("business", ()),
         ("decisions", ("B00001", "default", None, 1000)))
WINDOW = (Decimal("18.02"), Decimal("17.98"), Decimal("17.99"), Decimal("17.94"), Decimal("17.95"))


def decisions(start: int, count: int, books: int = 10_000) -> list[Decision]:
    """Realistic decisions: 10,000 books B00001.., one strategy, a window of 5, ticks advancing, all of
    one Scheduler run (``run`` = T0)."""
    out = []
    for i in range(start, start + count):
        tick, book = divmod(i, books)
        out.append(Decision(time.time(), tick, f"B{book + 1:05d}", "default", WINDOW, Decimal("17.976"),
                            1_795_000_000_000_000 + i, i % 2 == 0, Decimal("16.18") if i % 2 else Decimal("19.77"),
                            run=T0))
    return out


def frames(count: int) -> list[bytes]:
    """``count`` decisions as LedgerBatch frames, encoded beforehand; batch ids 1, 2, ..."""
    batch = decisions(0, count)
    return [protocol.encode(LedgerBatch(1 + i // BATCH, tuple(batch[i:i + BATCH]))) for i in range(0, count, BATCH)]


def _dealer(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, keys: Keys | None = None) -> zmq.Socket[bytes]:
    """A client of the Ledger; with ``keys``, CurveZMQ as a worker (the Algorithm's key may write)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    Security(keys).secure_client(sock, LEDGER_CHANNEL)
    sock.connect(endpoint)
    return sock


def stream(endpoint: str, batches: list[bytes], rate: float | None = None, probe: bool = True,
           sample: Any = None, keys: Keys | None = None) -> dict[str, Any]:
    """Send ``batches`` keeping IN_FLIGHT unacknowledged (at ``rate`` decisions/s if given), probing the
    loop every 5 ms; ``sample()`` is called about once a second."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    data, prober = _dealer(ctx, endpoint, keys), _dealer(ctx, endpoint, keys)
    poller = zmq.Poller()
    poller.register(data, zmq.POLLIN)
    poller.register(prober, zmq.POLLIN)
    probes: list[float] = []
    sent_probe: dict[int, float] = {}
    next_probe = next_sample = time.monotonic()
    probe_id = 0
    acked = errors = 0
    position = 0
    in_flight: set[int] = set()
    try:
        wait_ready(prober)
        start = next_probe = next_sample = time.monotonic()
        while acked < len(batches):
            now = time.monotonic()
            due_by_rate = len(batches) if rate is None else int((now - start) * rate / BATCH) + 1
            while position < min(len(batches), due_by_rate) and len(in_flight) < IN_FLIGHT:
                data.send(batches[position])
                in_flight.add(position + 1)  # the batch ids of frames()
                position += 1
            if probe and now >= next_probe:
                probe_id += 1
                prober.send(protocol.encode(LastDecidedRequest(probe_id, ())))
                sent_probe[probe_id] = now
                next_probe = max(next_probe + PROBE_EVERY, now)
            if sample is not None and now >= next_sample:
                sample()
                next_sample = now + 1.0
            wake = [next_sample if sample is not None else now + 0.05]
            if probe:
                wake.append(next_probe)
            if rate is not None and position < len(batches):
                wake.append(start + position * BATCH / rate)
            for sock, _ in poller.poll(min(50, max(1, int((min(wake) - time.monotonic()) * 1000)))):
                message = protocol.decode(sock.recv())
                at = time.monotonic()
                if isinstance(message, LedgerAck):
                    in_flight.discard(message.batch_id)
                    if message.error:
                        errors += 1
                        raise RuntimeError(f"the Ledger refused a batch: {message.error}")
                    acked += 1
                elif isinstance(message, LastDecidedReply) and (was := sent_probe.pop(message.request_id, None)):
                    probes.append(at - was)
        seconds = time.monotonic() - start
    finally:
        data.close(0)
        prober.close(0)
        ctx.term()
    return {"seconds": seconds, "batches": len(batches), "probes_ms": common.summary_ms(probes), "errors": errors}


def wait_ready(sock: zmq.Socket[bytes]) -> None:
    """Until the Ledger (just started) answers a probe: its start-up is no stall."""
    sock.send(protocol.encode(LastDecidedRequest(0, ())))
    if not sock.poll(20_000):
        raise TimeoutError("the Ledger did not start")
    sock.recv()


def idle_probes(endpoint: str, seconds: float) -> dict[str, float]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = _dealer(ctx, endpoint)
    latencies = []
    try:
        wait_ready(sock)
        end = time.monotonic() + seconds
        request_id = 0
        while time.monotonic() < end:
            request_id += 1
            sent = time.monotonic()
            sock.send(protocol.encode(LastDecidedRequest(request_id, ())))
            if not sock.poll(5000):
                raise TimeoutError("the Ledger did not answer a probe")
            sock.recv()
            latencies.append(time.monotonic() - sent)
            time.sleep(PROBE_EVERY)
    finally:
        sock.close(0)
        ctx.term()
    return common.summary_ms(latencies)


def baseline(path: Path, count: int) -> float:
    """Decisions/s of a bare executemany into the same table (the Ledger's schema, migrated by its own
    code; ``pairs`` left empty), same pragmas, a transaction per batch."""
    return count / bare_insert(path, count)[0]


def bare_insert(path: Path, count: int, drop: tuple[str, ...] = ()) -> tuple[float, float]:
    """(seconds, CPU seconds of this process) of :func:`baseline`'s inserts; ``drop``: indexes dropped first."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    schema.migrate(conn)
    for index in drop:
        conn.execute(f"DROP INDEX {index}")
    rows = [(d.book, d.strategy, d.run, d.tick, d.ts, json.dumps([str(p) for p in d.prices]), str(d.avg_comp_price),
             d.request_id, int(d.sold), str(d.price), None, None) for d in decisions(0, count)]
    insert = ("INSERT OR IGNORE INTO decisions (book, strategy, run, tick, ts, prices, avg_comp_price, request_id, "
              "sold, price, rule_price, guardrail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
    start, cpu = time.monotonic(), time.process_time()
    for i in range(0, count, BATCH):
        conn.execute("BEGIN")
        conn.executemany(insert, rows[i:i + BATCH])
        conn.execute("COMMIT")
    seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    conn.close()
    return seconds, cpu


def transport_baseline(directory: Path, batches: list[bytes], count: int) -> float:
    """Decisions/s of the second baseline: a bare executemany fed through the same transport
    (``bench/ledger_bare.py``: a ROUTER, msgpack, no checks, a transaction per batch), by the same client."""
    endpoint = f"ipc://{directory}/bare.sock"
    process = common.python_module("bench.ledger_bare", endpoint, str(directory / "bare.sqlite3"))
    try:
        run = stream(endpoint, batches, probe=False)
    finally:
        common.terminate(process)
    return count / float(run["seconds"])


INDEX_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all", ()), ("without decisions_by_ts", ("decisions_by_ts",)),
    ("without decisions_by_pair_ts", ("decisions_by_pair_ts",)),
    ("without both", ("decisions_by_ts", "decisions_by_pair_ts")))


def index_costs(directory: Path, count: int, rounds: int) -> dict[str, float]:
    """The bare executemany's CPU per decision (us; CPU, not wall time: the load of a shared machine
    moves it least) into the Ledger's schema as it is, and with each index of ``decisions`` dropped
    (and both), the best of ``rounds`` taking turns: what each index costs an insert (the Dashboard's
    pages and retention read through them)."""
    rates: dict[str, list[float]] = {name: [] for name, _ in INDEX_VARIANTS}
    for i in range(rounds):
        turn = i % len(INDEX_VARIANTS)  # a different one first each round
        for name, drop in INDEX_VARIANTS[turn:] + INDEX_VARIANTS[:turn]:
            cpu = bare_insert(directory / f"index-{i}-{name.replace(' ', '-')}.sqlite3", count, drop)[1]
            rates[name].append(cpu / count * 1e6)
    return {name: min(values) for name, values in rates.items()}


def db_bytes(path: Path) -> tuple[int, int]:
    """(bytes on disk after a checkpoint, rows) of a database no process writes any more."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    conn.close()
    size = sum(os.path.getsize(p) for p in (str(path), f"{path}-wal") if os.path.exists(p))
    return size, rows


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of a process, by thread id (the main thread's is the pid)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


class ReadLoad:
    """A Dashboard reading the Ledger over its socket flat out, on a thread of its own: ``READS`` in
    turn, ``READS_IN_FLIGHT`` at a time; counts the answers by status."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint
        self._stop = threading.Event()
        self.statuses: dict[str, int] = {}
        self.latencies: list[float] = []
        self._thread = threading.Thread(target=self._run, name="bench-reads", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(10)
        return {"statuses": dict(self.statuses), "read_ms": common.summary_ms(self.latencies)}

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = _dealer(ctx, self._endpoint)
        sent: dict[int, float] = {}
        request_id = 0
        try:
            while not self._stop.is_set():
                while len(sent) < READS_IN_FLIGHT:
                    request_id += 1
                    name, args = READS[request_id % len(READS)]
                    sock.send(protocol.encode(LedgerQuery(request_id, name, args)))
                    sent[request_id] = time.monotonic()
                if sock.poll(100):
                    reply = protocol.decode_as(sock.recv(), LedgerQueryReply)
                    began = sent.pop(reply.request_id, None)
                    self.statuses[reply.status.value] = self.statuses.get(reply.status.value, 0) + 1
                    if began is not None and reply.status is QueryStatus.OK:
                        self.latencies.append(time.monotonic() - began)
        finally:
            sock.close(0)
            ctx.term()


def insert_round(count: int, batches: list[bytes], reads: bool = False) -> dict[str, Any]:
    with private_dir("bl-") as directory:
        endpoint = f"ipc://{directory}/ledger.sock"
        db = directory / "ledger.sqlite3"
        with common.actor("ledger", "--ledger-endpoint", endpoint, "--db", str(db)) as ledger:
            idle = idle_probes(endpoint, 1.0)
            before = thread_cpu(ledger.pid)
            load = ReadLoad(endpoint) if reads else None
            if load is not None:
                load.start()
            try:
                run = stream(endpoint, batches)
            finally:
                read = load.stop() if load is not None else None
            after = thread_cpu(ledger.pid)
        size, rows = db_bytes(db)
        base = baseline(directory / "baseline.sqlite3", count) if not reads else 0.0
        through = transport_baseline(directory, batches, count) if not reads else 0.0
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    loop = used.pop(ledger.pid, 0.0)
    return {"rate": count / run["seconds"], "baseline_rate": base, "transport_rate": through,
            "idle_probes_ms": idle,
            "busy_probes_ms": run["probes_ms"], "db_bytes": size, "rows": rows,
            "loop_us": loop / count * 1e6, "db_thread_us": max(used.values(), default=0.0) / count * 1e6,
            "reads": read}


def insert_run(count: int, rounds: int) -> dict[str, Any]:
    batches = frames(count)
    done: list[dict[str, Any]] = []
    with_reads: list[dict[str, Any]] = []
    for i in range(rounds):  # alternating, each side first in turn: a neighbour's burst hits one round, not one side
        if i % 2:
            with_reads.append(insert_round(count, batches, reads=True))
        done.append(insert_round(count, batches))
        if not i % 2:
            with_reads.append(insert_round(count, batches, reads=True))
    last = done[-1]
    return {"count": count, "rounds": done, "rounds_with_reads": with_reads,
            "rate_with_reads": statistics.median(r["rate"] for r in with_reads),
            "read_ratios": [r["rate"] / p["rate"] for r, p in zip(with_reads, done, strict=True)],
            "rate": statistics.median(r["rate"] for r in done),
            "baseline_rate": statistics.median(r["baseline_rate"] for r in done),
            "ratios": [r["rate"] / r["baseline_rate"] for r in done],
            "transport_rate": statistics.median(r["transport_rate"] for r in done),
            "transport_ratios": [r["rate"] / r["transport_rate"] for r in done],
            "loop_us": statistics.median(r["loop_us"] for r in done),
            "db_thread_us": statistics.median(r["db_thread_us"] for r in done),
            "idle_probes_ms": last["idle_probes_ms"], "busy_probes_ms": last["busy_probes_ms"],
            "db_bytes": last["db_bytes"], "rows": last["rows"], "bytes_per_decision": last["db_bytes"] / last["rows"]}


def paced_reads_run(seconds: float) -> dict[str, Any]:
    """Reads while the Ledger inserts at the rate of 10,000 books per 5 s tick (its load in production):
    how long a Dashboard's read takes then, and the event loop's stall."""
    count = int(seconds * RATE_10K_BOOKS) // BATCH * BATCH
    with private_dir("bl-") as directory:
        endpoint = f"ipc://{directory}/ledger.sock"
        with common.actor("ledger", "--ledger-endpoint", endpoint, "--db", str(directory / "ledger.sqlite3")):
            load = ReadLoad(endpoint)
            load.start()
            try:
                run = stream(endpoint, frames(count), rate=RATE_10K_BOOKS)
            finally:
                reads = load.stop()
    return {"count": count, "seconds": run["seconds"], "probes_ms": run["probes_ms"], **reads}


def rss_run(seconds: float) -> dict[str, Any]:
    count = int(seconds * RATE_10K_BOOKS) // BATCH * BATCH
    samples: list[int] = []
    with private_dir("bl-") as directory:
        endpoint = f"ipc://{directory}/ledger.sock"
        db = directory / "ledger.sqlite3"
        batches = frames(count)
        retain = count // 4  # retention deletes run through most of the stream
        with common.actor("ledger", "--ledger-endpoint", endpoint, "--db", str(db),
                          "--retain-rows", str(retain)) as ledger:
            run = stream(endpoint, batches, rate=RATE_10K_BOOKS,
                         sample=lambda: samples.append(common.rss_kib(ledger.pid)))
        size, rows = db_bytes(db)
    first = samples[min(WARMUP_SAMPLES, len(samples) - 1)]
    growth = 100.0 * (samples[-1] - first) / first if first else 0.0
    middle = samples[len(samples) // 2]
    second_half = 100.0 * (samples[-1] - middle) / middle if middle else 0.0
    return {"count": count, "seconds": run["seconds"], "rss_kib": samples, "growth_pct": growth,
            "second_half_pct": second_half, "rows_kept": rows,
            "retain_rows": retain, "db_bytes": size, "probes_ms": run["probes_ms"]}


def measure(cfg: Config) -> Outcome:
    inserts = insert_run(cfg.pick(40_000, 200_000), cfg.pick(1, ROUNDS))
    with private_dir("bl-") as directory:
        indexes = index_costs(directory, cfg.pick(40_000, 100_000), 3)
    paced = paced_reads_run(cfg.pick(10.0, 30.0))
    soak = rss_run(cfg.pick(20.0, 180.0))
    out = Outcome(raw={"inserts": inserts, "index_costs": indexes, "paced_reads": paced, "soak": soak})
    ratios = ", ".join(f"{r:.2f}" for r in inserts["ratios"])
    out.rows.append(Row(f"Ledger insert rate, {inserts['count']:,} decisions in batches of {BATCH}",
                        inserts["rate"], "decisions/s", inserts["baseline_rate"],
                        "bare sqlite3 executemany, same table and pragmas", target=">= 0.8x",
                        met=inserts["rate"] >= 0.8 * inserts["baseline_rate"],
                        note=f"WAL, fsync per commit; medians of {len(inserts['rounds'])} alternating rounds "
                             f"(ratios {ratios}); CPU per decision: event loop {inserts['loop_us']:.1f} us, "
                             f"database thread {inserts['db_thread_us']:.1f} us (they take turns, sharing the "
                             f"GIL: {1e6 / (inserts['loop_us'] + inserts['db_thread_us']):,.0f}/s at most on a "
                             "free core)"))
    transport_ratios = ", ".join(f"{r:.2f}" for r in inserts["transport_ratios"])
    out.rows.append(Row("Ledger insert rate against a bare executemany fed through the same transport",
                        inserts["rate"], "decisions/s", inserts["transport_rate"],
                        "bench/ledger_bare.py: a ROUTER, msgpack, no checks, a transaction per batch",
                        note=f"same client and rounds (ratios {transport_ratios}); "
                             f"the transport baseline over the bare executemany: "
                             f"{inserts['transport_rate'] / inserts['baseline_rate']:.2f}x"))
    everything = indexes["all"]
    out.rows.append(Row("bare executemany's CPU per decision without the indexes of decisions",
                        indexes["without both"], "us", everything, "the same with both indexes",
                        note="each index's cost to an insert: CPU per decision against the schema's own, best of 3 "
                             "rounds taking turns: " + "; ".join(f"{name}: {cpu / everything:.2f}x"
                                                                 for name, cpu in indexes.items() if name != "all")))
    reads = inserts["rounds_with_reads"][-1]["reads"]
    answered = sum(r["reads"]["statuses"].get("ok", 0) for r in inserts["rounds_with_reads"])
    out.rows.append(Row("Ledger insert rate while a Dashboard reads it over its socket flat out",
                        inserts["rate_with_reads"], "decisions/s", inserts["rate"], "the same inserts without reads",
                        target=">= 0.8x", met=inserts["rate_with_reads"] >= 0.8 * inserts["rate"],
                        note=f"{READS_IN_FLIGHT} reads in flight (a books page, the business, 1,000 decisions, in "
                             f"turn); medians of {len(inserts['rounds'])} alternating rounds (ratios "
                             f"{', '.join(f'{r:.2f}' for r in inserts['read_ratios'])}); {answered:,} reads answered, "
                             f"last round {reads['statuses']}, read p50 {reads['read_ms']['p50']:.1f} ms, p99 "
                             f"{reads['read_ms']['p99']:.1f} ms"))
    out.rows.append(Row("Dashboard read over the Ledger's socket while it inserts 2,000 decisions/s: p99",
                        paced["read_ms"]["p99"], "ms", note=f"p50 {paced['read_ms']['p50']:.1f} ms, "
                        f"{paced['statuses'].get('ok', 0) / paced['seconds']:.1f} reads/s answered "
                        f"({paced['statuses']}); the Ledger's loop stall p99 {paced['probes_ms']['p99']:.1f} ms"))
    idle = inserts["idle_probes_ms"]
    for label, probes, target in (("at 2,000 decisions/s (10,000 books per 5 s tick)", soak["probes_ms"], "< 10 ms"),
                                  ("inserting flat out", inserts["busy_probes_ms"], "")):
        out.rows.append(Row(f"Ledger event-loop stall {label}: probe latency p99", probes["p99"], "ms", idle["p99"],
                            "same probe, idle Ledger", target=target, met=probes["p99"] < 10.0 if target else None,
                            note=f"p50 {probes['p50']:.2f} ms, max {probes['max']:.1f} ms, n={int(probes['n'])}"))
    per = inserts["bytes_per_decision"]
    out.rows.append(Row("Ledger disk per decision (database file / rows)", per, "bytes",
                        note=f"6 h at 10,000 books per 5 s tick: {per * SIX_HOURS_AT_10K_BOOKS / 1e9:.1f} GB"))
    samples = soak["rss_kib"]
    # A leak keeps growing; a cache (SQLite's pages, the pairs waiting for ``pairs``) levels off: the
    # target is on the second half, the growth from the 5th second is shown beside it.
    out.rows.append(Row(f"Ledger RSS growth over the second half of {soak['seconds']:.0f} s at 2,000 decisions/s "
                        "with retention", soak["second_half_pct"], "%", target="flat (< 2%)",
                        met=abs(soak["second_half_pct"]) < 2.0,
                        note=f"from the 5th second: {soak['growth_pct']:+.1f}% "
                             f"({samples[min(WARMUP_SAMPLES, len(samples) - 1)] / 1024:.1f} -> "
                             f"{samples[-1] / 1024:.1f} MiB); rows kept {soak['rows_kept']:,} "
                             f"(limit {soak['retain_rows']:,})"))
    return out
