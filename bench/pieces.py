"""The batched path's pieces, each alone in this process against the bare code that does the same
without the checks (what a bare batched script would do), CPU time per item, the best of ``ROUNDS``
rounds taking turns (issue 19 item 5; the Ledger's own pieces for item 4):

* the DataManager's row parser (``csv_rows.parse_row`` with its price cache) per CSV line, against
  ``split(",")`` and ``Decimal`` of the price;
* a window in a WindowsReply of 500 (``protocol.decode``), against ``msgpack.unpackb`` of the frame;
* the Algorithm's JSON line (``output.format_json_bytes``), against ``orjson.dumps`` of the ready dict;
* the Ledger's reading of a decision (``ledger_rows.read_batch`` and the watch), against
  ``msgpack.unpackb`` of the frame.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal

import msgpack
import orjson

from actors.alert_rules import Thresholds
from actors.algorithm.output import format_json_bytes
from actors.csv_rows import PriceCache, parse_header, parse_row
from actors.ledger.watch import Watch
from bench import ledger
from bench.common import Config, Outcome, Row
from transport import ledger_rows, protocol
from transport.protocol import Decision, WindowsReply

ROUNDS = 5
WINDOW = tuple(Decimal(x) for x in ("18.02", "17.98", "17.99", "17.94", "17.95"))


def best_us(runs: dict[str, Callable[[], None]], items: int, rounds: int) -> dict[str, float]:
    """CPU microseconds per item of each run, the best of ``rounds`` rounds, each round in another order."""
    out = {name: float("inf") for name in runs}
    names = list(runs)
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            started = time.process_time()
            runs[name]()
            out[name] = min(out[name], (time.process_time() - started) / items * 1e6)
    return out


def rows_parser(lines: int, rounds: int) -> dict[str, float]:
    rng = random.Random(19)
    raw = [f"2026-12-04T10:00:{i % 60:02d},B{rng.randrange(100_000):06d},{rng.randrange(1000, 3000) / 100:.2f}"
           .encode() for i in range(lines)]
    columns = parse_header("timestamp,book_id,price")
    prices = PriceCache()

    def ours() -> None:
        for number, line in enumerate(raw):
            parse_row(line.decode("utf-8"), columns, number, prices)

    def bare() -> None:
        for line in raw:
            Decimal(line.decode().split(",")[2])
    return best_us({"parse_row": ours, "bare": bare}, lines, rounds)


def windows(count: int, rounds: int) -> dict[str, float]:
    frame = protocol.encode(WindowsReply(1, 5, (WINDOW,) * count, ("",) * count))

    def decode() -> None:
        for _ in range(20):
            protocol.decode(frame)

    def bare() -> None:
        for _ in range(20):
            msgpack.unpackb(frame)
    return best_us({"decode": decode, "bare": bare}, 20 * count, rounds)


def json_line(count: int, rounds: int) -> dict[str, float]:
    decision = Decision(time.time(), 5, "B00001", "default", WINDOW, Decimal("17.976"), 1_795_000_000_000_001,
                        True, Decimal("19.77"), run=1.79e9, factor=Decimal("1.1"))
    ready = {"ts": "2026-12-05T00:00:00.000Z", "tick": 5, "book": "B00001", "strategy": "default",
             "prices": ["18.02", "17.98", "17.99", "17.94", "17.95"], "avg_comp_price": "17.976",
             "request_id": 1_795_000_000_000_001, "sold": True, "price": "19.77", "factor": "1.1"}

    def ours() -> None:
        for _ in range(count):
            format_json_bytes(decision)

    def bare() -> None:
        for _ in range(count):
            orjson.dumps(ready)
    return best_us({"format_json_bytes": ours, "bare": bare}, count, rounds)


def ledger_reading(count: int, rounds: int) -> dict[str, float]:
    frames = ledger.frames(count)

    def read() -> None:
        for frame in frames:
            ledger_rows.read_batch(frame)

    def watch() -> None:
        seen = Watch(Thresholds())
        for frame in frames:
            read = ledger_rows.read_batch(frame)
            assert read is not None
            seen.observe(read[1], 1e10)

    def bare() -> None:
        for frame in frames:
            msgpack.unpackb(frame)
    return best_us({"read_batch": read, "read_batch + watch": watch, "bare": bare}, count, rounds)


def measure(cfg: Config) -> Outcome:
    rounds = cfg.pick(3, ROUNDS)
    parser = rows_parser(cfg.pick(5_000, 20_000), rounds)
    window = windows(500, rounds)
    line = json_line(cfg.pick(5_000, 20_000), rounds)
    reading = ledger_reading(cfg.pick(10_000, 40_000), rounds)
    out = Outcome(raw={"row_parser": parser, "window": window, "json_line": line, "ledger_reading": reading})
    out.rows.append(Row("DataManager's row parser, per CSV line (csv_rows.parse_row, price cache)", parser["parse_row"],
                        "us", parser["bare"], "split(',') + Decimal of the price"))
    out.rows.append(Row("a window of 5 prices in a WindowsReply of 500, decoded (protocol.decode)", window["decode"],
                        "us", window["bare"], "msgpack.unpackb of the frame"))
    out.rows.append(Row("the Algorithm's JSON line (output.format_json_bytes)", line["format_json_bytes"], "us",
                        line["bare"], "orjson.dumps of the ready dict"))
    out.rows.append(Row("the Ledger's reading of a decision (ledger_rows.read_batch, then its watch)",
                        reading["read_batch + watch"], "us", reading["bare"], "msgpack.unpackb of the frame",
                        note=f"read_batch alone {reading['read_batch']:.2f} us"))
    return out
