"""What the launcher checks before it starts anything, so that what cannot work is refused at once,
in one line, instead of crash-looping (or idling) for ever. Each check raises :class:`Refusal` with
the reason; the launcher prints ``error: <reason>`` and exits 2. The backtest puts the launcher's
``--data-file``, ``--config`` and ``--tick`` through the same checks (:func:`readable_file`,
:func:`data_file`, :func:`pricing`)."""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Iterable, Sequence
from decimal import Decimal

from actors.algorithm.config import Config, load_config
from actors.algorithm.options import PricingOptions, book_ids
from actors.first_rows import DataCheck, check_data_file
from transport import endpoints
from transport.logs import printable

SHOWN_BOOKS = 5  # ids named in the "pricing ..." line; the count says the rest


class Refusal(ValueError):
    """The command line asks for something that cannot work."""


def readable_file(flag: str, path: str) -> None:
    """``path`` is an existing regular file we can open for reading."""
    shown = printable(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise Refusal(f"{flag} {shown}: no such file") from None
    except OSError as exc:
        raise Refusal(f"{flag} {shown}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise Refusal(f"{flag} {shown}: not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise Refusal(f"{flag} {shown}: {exc.strerror}") from None


def data_file(flag: str, path: str, books: Sequence[str] | None, replay: bool) -> DataCheck:
    """What the start of the data file says about the books priced (None: any book):
    :mod:`actors.first_rows`. A file that can give no decision (no usable header, no
    valid row for any book priced) is refused in replay mode; in follow mode its rows may still come,
    so the verdict is returned for the launcher to say why it waits."""
    try:
        found = check_data_file(path, books)
    except OSError as exc:
        raise Refusal(f"{flag} {printable(path)}: {exc.strerror or exc}") from None
    if found.refused and replay:
        raise Refusal(found.problem(flag, path))
    return found


def pricing(options: PricingOptions, tick: float) -> tuple[list[str], Config | None]:
    """The books priced and the config (None without ``--config``: ``--books``/``--books-file`` and
    ``--delay`` then), checked: a bad config is a ConfigError naming file, line and key; no book, or a
    delay not shorter than the tick, a Refusal."""
    config = None
    if options.config:
        config = load_config(options.config)
        books = config.books
        source = f"--config {options.config}"
        delays = [(f"strategy {name!r}: delay", s.delay) for name, s in config.strategies.items()]
    else:
        try:
            books = book_ids(options)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise Refusal(f"--books-file {printable(options.books_file or '')}: {reason}") from None
        source = f"--books-file {options.books_file}" if options.books_file else "--books"
        delays = [("--delay", options.delay)]
    no_book(books, printable(source))
    delays_within_tick(delays, tick)
    return books, config


def valid_endpoints(flag: str, value: str) -> tuple[str, ...]:
    """Every endpoint of a comma-separated list, each one usable between processes."""
    parts = endpoints.split_list(value)
    if not parts:
        raise Refusal(f"{flag}: no endpoint given")
    for part in parts:
        if (problem := endpoints.problem(part)) is not None:
            raise Refusal(f"{flag} {problem}")
    return parts


def valid_url(flag: str, url: str) -> None:
    if (problem := endpoints.url_problem(url)) is not None:
        raise Refusal(f"{flag} {problem}")


def bindable(what: str, endpoint: str) -> None:
    """A tcp endpoint this launcher's actors will bind is free now (ipc ones are unlinked and reused
    by ZeroMQ): refused here at once rather than by an actor failing to start."""
    if not endpoint.startswith("tcp://"):
        return
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    free(what, endpoint, "" if host == "*" else host.strip("[]"), int(port))


def free(what: str, shown: str, host: str, port: int) -> None:
    """Binding ``host:port`` works now (with SO_REUSEADDR, as ZeroMQ and aiohttp bind)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Refusal(f"{what} {printable(shown)}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen()
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise Refusal(f"{what} {printable(shown)}: {reason}") from None


def no_book(books: Sequence[str], source: str) -> None:
    if not books:
        raise Refusal(f"no book to price: {source} lists none")


def delays_within_tick(delays: Iterable[tuple[str, Decimal]], tick: float) -> None:
    """A decision takes x (the delay) plus two HTTP calls: with x >= the tick every pair overruns every
    tick and nothing is ever decided."""
    for name, delay in delays:
        if delay >= Decimal(str(tick)):
            raise Refusal(f"{name} {delay} s is not shorter than --tick {tick:g} s: every decision would overrun "
                          "its tick (pass the Scheduler's --tick to every launcher)")


def priced(books: Sequence[str]) -> str:
    """What is priced, for the log: the count and the first few ids."""
    shown = ", ".join(printable(book, 40) for book in books[:SHOWN_BOOKS])
    return f"{len(books)} book(s): {shown}{', ...' if len(books) > SHOWN_BOOKS else ''}"
