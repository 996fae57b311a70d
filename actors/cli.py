"""Command-line options shared by the Algorithm and the launcher, which passes them through.

Kept apart from :mod:`actors.algorithm` so the launcher does not import aiohttp: with the spawn start
method every child re-imports the launcher's module, and each import there costs every process memory.
"""

from __future__ import annotations

import argparse
from decimal import Decimal

from actors.strategies import DEFAULT_DELAY
from transport import endpoints

DEFAULT_BOOKS = ("B001", "B002", "B003", "B004", "B005")


def positive_decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"not a non-negative number: {text}")
    return value


def add_pricing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--books", default=",".join(DEFAULT_BOOKS), metavar="ID,ID,...",
                        help="books to price (default %(default)s)")
    parser.add_argument("--books-file", metavar="PATH", default=None,
                        help="books to price, one id per line (for lists too long for a command line)")
    parser.add_argument("--delay", type=positive_decimal, default=DEFAULT_DELAY, metavar="S",
                        help="x: seconds between registering a request and reading it (default %(default)s)")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="TOML file listing books and their strategies (overrides --books and --delay); "
                             "see repricer.example.toml")
    parser.add_argument("--json", action="store_true", help="print decisions as JSON lines")
    parser.add_argument("--max-in-flight", type=int, default=64, metavar="N",
                        help="HTTP requests in flight at most (default %(default)s)")
    parser.add_argument("--dm-timeout", type=float, default=1.0, metavar="S",
                        help="DataManager reply timeout per attempt (default %(default)s)")
    parser.add_argument("--http-timeout", type=float, default=2.0, metavar="S",
                        help="APIServer timeout per request (default %(default)s)")


def book_ids(args: argparse.Namespace) -> list[str]:
    """The books from ``--books-file`` if given, else ``--books``; duplicates dropped, order kept."""
    if args.books_file:
        with open(args.books_file, encoding="utf-8") as f:
            ids = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    else:
        ids = list(endpoints.split_list(args.books))
    return list(dict.fromkeys(ids))
