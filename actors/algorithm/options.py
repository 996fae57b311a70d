"""The Algorithm's command-line options. :class:`PricingOptions` are also the launcher's: it parses
them once and hands them to each worker with :func:`actors.options.to_argv`.

Kept apart from :mod:`actors.algorithm.actor` so the launcher does not import aiohttp: with the spawn
start method every child re-imports the launcher's module, and each import there costs every process
memory.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Final

from actors import paths
from actors.options import option
from actors.pricing.config.files import FileRefused, read_book_list
from actors.pricing.config.values import ConfigError
from actors.pricing.strategies import DEFAULT_DELAY
from transport import endpoints, limits
from transport.logs import printable

DEFAULT_BOOKS = ("B001", "B002", "B003", "B004", "B005")
DEFAULT_SPOOL_DIR: Final = str(paths.SPOOL_DIR)  # absolute, as the Ledger's database: one spool from any directory
SPOOL_MIN_BYTES = 1 << 20
_UNITS: Final = MappingProxyType({"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40})


def byte_size(text: str) -> int:
    """A number of bytes, optionally with a binary unit: 500000, 64M, 1G (K, M, G, T: powers of 1024)."""
    number, unit = text.strip().upper().removesuffix("B"), ""
    if number and number[-1] in _UNITS:
        number, unit = number[:-1], number[-1]
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"not a size in bytes (e.g. 500000, 64M, 1G): {text!r}")
    return int(number) * _UNITS[unit]


def render_size(value: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if value % _UNITS[unit] == 0:
            return f"{value // _UNITS[unit]}{unit}"
    return str(value)


def delay_seconds(text: str) -> Decimal:
    """x: a non-negative decimal number of seconds, at most ``limits.DELAY_MAX``."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value.is_finite() or not 0 <= value <= limits.DELAY_MAX:
        raise argparse.ArgumentTypeError(f"must be within 0..{limits.DELAY_MAX} seconds, got {text}")
    return value


@dataclass(frozen=True, slots=True)
class PricingOptions:
    """What to price and how: shared by ``python -m actors.algorithm`` and ``launcher.py``."""

    books: str = option(",".join(DEFAULT_BOOKS), "books to price", metavar="ID,ID,...")
    books_file: str | None = option(None, "books to price, one id per line (for lists too long for a "
                                    "command line)", metavar="PATH")
    delay: Decimal = option(DEFAULT_DELAY, "x: seconds between registering a request and reading it",
                            parse=delay_seconds, metavar="S")
    config: str | None = option(None, "TOML file listing books and their strategies (overrides --books and "
                                "--delay; refused with --books-file); see repricer.example.toml", metavar="FILE")
    config_poll: float = option(0.0, "with --config: also reload when a file it read changes (edited, replaced, "
                                "or swapped in as a Kubernetes ConfigMap volume does), looking every S seconds; "
                                "0: on SIGHUP only", metavar="S")
    json: bool = option(False, "print decisions as JSON lines")
    max_in_flight: int = option(64, "HTTP requests in flight at most: the size of each Algorithm worker's "
                                "pool of coroutines", metavar="N")
    dm_timeout: float = option(1.0, "DataManager reply timeout per attempt", metavar="S")
    http_timeout: float = option(2.0, "APIServer timeout per request", metavar="S")
    api_batch: int = option(1, "pairs per APIServer call: 1 = one POST /register-request and one GET "
                            f"/request-data/<id> per decision; 2..{limits.API_BATCH_MAX} = POST /register-requests "
                            "and POST /request-data with that many items", metavar="N")
    api_rate: float = option(0.0, "APIServer calls per second per endpoint at most (a token bucket; a batch "
                             "call counts as one); 0 = unpaced. A 429's retry_after is obeyed either way",
                             metavar="R")
    api_burst: int = option(10, "calls the token bucket of --api-rate lets through at once (keep it below the "
                            "server's own burst: network jitter then never meets its bucket empty)", metavar="B")
    dm_batch: int = option(200, "books per DataManager request: 1 = one LastPricesRequest per book; "
                           f"2..{limits.BATCH_BOOKS_MAX} = one WindowsRequest for that many books of a tick",
                           metavar="N")

    def __post_init__(self) -> None:
        if not 1 <= self.max_in_flight <= 10_000:
            raise ValueError("--max-in-flight must be within 1..10000")
        if not 1 <= self.api_batch <= limits.API_BATCH_MAX:
            raise ValueError(f"--api-batch must be within 1..{limits.API_BATCH_MAX}")
        if not 1 <= self.dm_batch <= limits.BATCH_BOOKS_MAX:
            raise ValueError(f"--dm-batch must be within 1..{limits.BATCH_BOOKS_MAX}")
        if not (math.isfinite(self.api_rate) and 0 <= self.api_rate <= 1_000_000):
            raise ValueError("--api-rate must be within 0..1000000 calls per second")
        if not 1 <= self.api_burst <= 1_000_000:
            raise ValueError("--api-burst must be within 1..1000000")
        if not (self.config_poll == 0 or 0.1 <= self.config_poll <= 3600):
            raise ValueError("--config-poll must be 0 (off) or within 0.1..3600 seconds")
        for name in ("dm_timeout", "http_timeout"):
            if not 0.01 <= getattr(self, name) <= 600:
                raise ValueError(f"--{name.replace('_', '-')} must be within 0.01..600 seconds")


@dataclass(frozen=True, slots=True)
class AlgorithmOptions(PricingOptions):
    """A worker's whole command line: the pricing options, its peers, and which share of the pairs."""

    ticks_endpoint: str = option(endpoints.DEFAULT_TICKS, "Scheduler PUB endpoint to connect to", metavar="ENDPOINT",
                                 deprecated=("--ticks",))
    data_endpoint: str = option(endpoints.DEFAULT_DATA, "DataManager ROUTER endpoint(s); several are load-balanced",
                                metavar="ENDPOINT[,ENDPOINT]", deprecated=("--data",))
    api_url: str = option(endpoints.DEFAULT_API_URL, "APIServer base URL")
    ledger_endpoint: str = option(endpoints.DEFAULT_LEDGER, "Ledger ROUTER endpoint: decisions are kept there and "
                                  "pairs resume from their last decided price (empty: no Ledger)", metavar="ENDPOINT",
                                  deprecated=("--ledger",))
    workers_total: int = option(1, "Algorithm workers in all, across every launcher", metavar="M",
                                deprecated=("--workers",))
    worker: int = option(0, "this worker's index in 0..workers_total-1", metavar="K")
    worker_from_env: str | None = option(None, "take this worker's index from environment variable VAR instead "
                                         "of --worker: a number, or a name ending in -N (a Kubernetes "
                                         "StatefulSet pod's name, given by the downward API: the index stays "
                                         "the pod's across restarts)", metavar="VAR")
    spool_dir: str = option(DEFAULT_SPOOL_DIR, "with a Ledger, each decision is kept in this worker's spool, "
                            "DIR/algorithm-K (K its --worker index), written and fsync'd before it is printed, and "
                            "shipped to the Ledger from there; a restarted worker delivers what the Ledger never "
                            "acknowledged", metavar="DIR")
    spool_max_bytes: int = option(1 << 30, "the spool's files at most (K, M, G: powers of 1024): when full (the "
                                  "Ledger down or behind that long), repricing pauses until the Ledger acknowledges "
                                  "decisions; nothing is dropped", parse=byte_size, render=render_size,
                                  metavar="BYTES")
    ledger_backlog: int = option(limits.LEDGER_BACKLOG_MAX, "decisions kept and not yet acknowledged by a Ledger "
                                 "that answers, at most: past it, new pairs wait their turn until it catches up "
                                 "(backpressure; a Ledger that does not answer holds nothing back). Small enough "
                                 "for a clean stop to deliver them all in a second or two", metavar="N")
    no_spool: bool = option(False, "LOSES DECISIONS: no spool; print each decision first and hand it to the "
                            "Ledger from memory afterwards. The Ledger then misses every printed decision it had "
                            "not acknowledged when the worker dies, and the newest ones while it is down or behind "
                            f"by more than {limits.LEDGER_OUTBOX_MAX:,} (counted ledger_dropped); repricing never "
                            "waits for it")

    def __post_init__(self) -> None:
        PricingOptions.__post_init__(self)
        if self.spool_max_bytes < SPOOL_MIN_BYTES:
            raise ValueError(f"--spool-max-bytes must be at least {render_size(SPOOL_MIN_BYTES)}")
        if not 1 <= self.ledger_backlog <= 100_000_000:
            raise ValueError("--ledger-backlog must be within 1..100000000")
        if not 1 <= self.workers_total <= 1024:
            raise ValueError("--workers-total must be within 1..1024")
        if not 0 <= self.worker < self.workers_total:
            raise ValueError(f"--worker must be in 0..{self.workers_total - 1}")
        if self.worker_from_env is not None and self.worker != 0:
            raise ValueError("--worker and --worker-from-env are exclusive")


def ordinal(text: str) -> int:
    """A worker index from ``text``: ``"3"``, or a name whose last ``-`` part is a number
    (``"algorithm-3"``, as Kubernetes names a StatefulSet's pods). Raises ValueError."""
    digits = text.strip().rpartition("-")[2]
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 6:
        raise ValueError(f"{printable(text, 80)!r} is neither a number nor a name ending in -N")
    return int(digits)


def with_worker_from_env(options: AlgorithmOptions, environ: Mapping[str, str]) -> AlgorithmOptions:
    """``options`` with ``worker`` read from ``--worker-from-env`` (unchanged without it). Raises
    ValueError, saying which variable and why."""
    name = options.worker_from_env
    if name is None:
        return options
    if name not in environ:
        raise ValueError(f"--worker-from-env {printable(name, 80)}: no such environment variable")
    try:
        index = ordinal(environ[name])
    except ValueError as exc:
        raise ValueError(f"--worker-from-env {printable(name, 80)}: {exc}") from None
    if not 0 <= index < options.workers_total:
        raise ValueError(f"--worker-from-env {printable(name, 80)}: index {index} is not in "
                         f"0..{options.workers_total - 1} (--workers-total must match the number of workers)")
    return replace(options, worker=index, worker_from_env=None)


def spool_path(options: AlgorithmOptions) -> Path:
    """This worker's own spool directory (one per worker index: workers never share one)."""
    return Path(options.spool_dir) / f"algorithm-{options.worker}"


def book_ids(options: PricingOptions) -> list[str]:
    """The books from ``--books-file`` if given, else ``--books``; duplicates dropped, order kept.

    The file is read as bounded text (a regular UTF-8 file of at most ``limits.BOOKS_FILE_MAX_BYTES``,
    one valid book id per line, ``#`` comments); raises :class:`ConfigError` (``path:line: reason``
    or ``--books: reason``) for anything else."""
    if options.books_file:
        try:
            return read_book_list(Path(options.books_file))
        except FileRefused as exc:
            raise ConfigError(f"--books-file {options.books_file}: {exc}") from None
    ids = list(dict.fromkeys(endpoints.split_list(options.books)))
    for book in ids:
        if not limits.is_valid_book_id(book):
            raise ConfigError(f"--books: '{printable(book, 40)}' is not a valid book id (1..{limits.BOOK_ID_MAX_LEN} "
                              "printable characters)")
    if len(ids) > limits.BOOKS_MAX:
        raise ConfigError(f"--books: more than {limits.BOOKS_MAX} books")
    return ids
