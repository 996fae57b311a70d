"""Generate a competitor-price CSV for the DataManager: ``timestamp,book_id,price``.

Every book follows its own random walk around 10-40 (2-decimal prices, always positive); rows are
interleaved in time order (one row per book per step, 5 s apart) or, with ``--sorted``, grouped by
book. Rows are streamed to the output, so ten million of them need no more memory than ten::

    python data/generate.py --books 5 --rows 2000 --seed 1 -o data/data.csv
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(seconds=5)
LOW, HIGH = 10.0, 40.0


def book_ids(books: int) -> list[str]:
    width = max(3, len(str(books)))
    return [f"B{i:0{width}d}" for i in range(1, books + 1)]


def _walk(rng: random.Random) -> Iterator[int]:
    """Prices in cents: a random walk reflected into [LOW, HIGH]."""
    price = rng.uniform(LOW + 5, HIGH - 5)
    while True:
        price += rng.gauss(0.0, 0.25)
        if price < LOW:
            price = 2 * LOW - price
        elif price > HIGH:
            price = 2 * HIGH - price
        yield max(1, round(price * 100))


def _stamp(step: int) -> str:
    return (START + step * STEP).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(out: TextIO, books: int, rows: int, seed: int, sort_by_book: bool = False) -> int:
    """Write the header and ``books * rows`` rows; return the number of rows written."""
    rng = random.Random(seed)
    ids = book_ids(books)
    walks = [_walk(rng) for _ in ids]
    out.write("timestamp,book_id,price\n")
    if sort_by_book:
        for book, walk in zip(ids, walks, strict=True):
            out.writelines(f"{_stamp(s)},{book},{c // 100}.{c % 100:02d}\n"
                           for s, c in zip(range(rows), walk, strict=False))
    else:
        for step in range(rows):
            stamp = _stamp(step)
            out.writelines(f"{stamp},{book},{c // 100}.{c % 100:02d}\n"
                           for book, c in zip(ids, (next(w) for w in walks), strict=True))
    return books * rows


def main(argv: Sequence[str] | None = None) -> int:
    about = (__doc__ or "").replace("``", "").replace("::\n", ":\n")  # the docstring, read as text
    parser = argparse.ArgumentParser(prog="python data/generate.py", description=about,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", type=int, default=5, help="number of books (default %(default)s)")
    parser.add_argument("--rows", type=int, default=2000, help="rows per book (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    parser.add_argument("--sorted", action="store_true", help="group rows by book instead of by time")
    parser.add_argument("-o", "--output", default="-", help="output file, - for stdout (default)")
    args = parser.parse_args(argv)
    if args.books < 1 or args.rows < 0:
        parser.error("--books must be >= 1 and --rows >= 0")
    if args.output == "-":
        generate(sys.stdout, args.books, args.rows, args.seed, args.sorted)
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
            generate(out, args.books, args.rows, args.seed, args.sorted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
