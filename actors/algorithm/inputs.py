"""The strategies' inputs checked before a run (live or backtest): the books priced and the config,
with every strategy's delay shorter than the tick. Raises :class:`~actors.run_inputs.Refusal`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from actors.algorithm.options import PricingOptions, book_ids
from actors.pricing.config import Config, load_config
from actors.run_inputs import Refusal
from transport.logs import printable


def pricing(options: PricingOptions, tick: float) -> tuple[list[str], Config | None]:
    """The books priced and the config (None without ``--config``: ``--books``/``--books-file`` and
    ``--delay`` then), checked: a bad config is a ConfigError naming file, line and key; no book, or a
    delay not shorter than the tick, a Refusal."""
    config = None
    if options.config and options.books_file:  # else the file is silently not read (issue 21's trial)
        raise Refusal(f"--books-file {printable(options.books_file)} with --config {printable(options.config)}: "
                      "the config names the books priced (a [[books]] table's ids or file = ...): give one or "
                      "the other")
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
