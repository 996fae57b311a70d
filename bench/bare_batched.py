"""The bare batched script: the work the system does per decision on the batched path, in one process,
with no ZeroMQ, no actors, no checks -- the floor each process's CPU per decision is compared against
(``bench/batched.py``, issue 19).

Per tick ``k`` of ``--ticks`` (replay semantics, as the DataManager's: tick ``k`` sees a book's points
``k .. k+4``): stream-parse the CSV's next rows (``split(",")`` and ``Decimal`` of the price) until every
book has its point ``k+4``, keeping each book's last 5; then for each book: average the window as
Decimal, an HTTP-free sale outcome (a counter's id, sold when even), the price ``sum * 1.1 / 5`` after a
sale or ``* 0.9`` after none rounded half-up to cents, and its output line (the Algorithm's JSON line,
same fields and order, made with ``orjson.dumps`` of a dict; ``--human`` for the text line) written to
stdout, a tick's lines together.

    python -m bench.bare_batched --data-file CSV --books 20000 --ticks 10 --warmup 2 > /dev/null

Its CPU time (``time.process_time``) over the ticks after ``--warmup`` goes to stderr as one JSON line:
``{"decisions", "rows", "cpu_s", "us_per_decision"}``.
"""

from __future__ import annotations

import argparse
import decimal
import json
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, BinaryIO

import orjson

WINDOW = 5
CENT = Decimal("0.01")
SOLD, UNSOLD = Decimal("1.1"), Decimal("0.9")
FIRST_ID = 1_795_000_000_000_001  # the APIServer's ids are of this size


def run(lines: Iterator[str], books: Sequence[str], ticks: int, warmup: int, out: BinaryIO,
        human: bool = False) -> dict[str, Any]:
    """Decide every book at each of ``ticks`` ticks; CPU time and counts of the ticks after ``warmup``."""
    exact = decimal.Context(prec=60, rounding=ROUND_HALF_UP)  # as the rule's (limits.MEAN_DIGITS)
    size = Decimal(WINDOW)
    points: dict[str, list[Any]] = {book: [0, deque(maxlen=WINDOW)] for book in books}  # count, last 5
    next(lines, None)  # the header
    request_id = FIRST_ID
    started = rows = decisions = 0
    cpu_at = 0.0
    for k in range(ticks):
        if k == warmup:
            cpu_at, started, rows_at = time.process_time(), decisions, rows
        need, wanted = len(points), k + WINDOW
        for line in lines:  # the next rows, until every book has its point k+4 (or the file ends)
            rows += 1
            _, book, raw = line.split(",")
            record = points.get(book)
            if record is None:
                continue
            record[1].append(Decimal(raw))
            record[0] += 1
            if record[0] == wanted:
                need -= 1
                if not need:
                    break
        ts = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        chunk = []
        for book, (_, window) in points.items():
            prices = tuple(window)
            total = exact.create_decimal(0)
            for p in prices:
                total = exact.add(total, p)
            avg = exact.divide(total, size)
            request_id += 1
            sold = request_id % 2 == 0
            factor = SOLD if sold else UNSOLD
            price = exact.divide(exact.multiply(total, factor), size).quantize(CENT, rounding=ROUND_HALF_UP)
            if human:
                chunk.append((f"{ts} tick={k} book={book} strategy=default avg_comp_price={avg} "
                              f"sold={'yes' if sold else 'no'} price={price} request_id={request_id} "
                              f"prices=[{' '.join(str(p) for p in prices)}] factor={factor}\n").encode())
            else:
                chunk.append(orjson.dumps({"ts": ts, "tick": k, "book": book, "strategy": "default",
                                           "prices": [str(p) for p in prices], "avg_comp_price": str(avg),
                                           "request_id": request_id, "sold": sold, "price": str(price),
                                           "factor": str(factor)}) + b"\n")
            decisions += 1
        out.write(b"".join(chunk))
        out.flush()
    cpu = time.process_time() - cpu_at
    measured = decisions - started
    return {"decisions": measured, "rows": rows - rows_at, "cpu_s": cpu,
            "us_per_decision": 1e6 * cpu / max(1, measured)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_batched", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-file", required=True, type=Path, help="a CSV of data/generate.py")
    parser.add_argument("--books", required=True, type=int, help="books B001.. (the generator's ids)")
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2, help="ticks before the CPU time is taken")
    parser.add_argument("--human", action="store_true", help="the text line instead of JSON")
    args = parser.parse_args(argv)
    width = max(3, len(str(args.books)))
    books = [f"B{i:0{width}d}" for i in range(1, args.books + 1)]
    with open(args.data_file, encoding="utf-8") as f:
        lines = (line.rstrip("\n") for line in f)
        result = run(lines, books, args.ticks, args.warmup, sys.stdout.buffer, args.human)
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
