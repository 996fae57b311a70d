"""Reloading the config while the Algorithm runs: on SIGHUP and, optionally, when a file it read changes.

A reload reads and validates the whole config (with its book files and catalog) into a new
:class:`Config`; any error refuses it as a whole, logs ``file:line: key: reason`` and the running
config stays. Loading runs in a worker thread (a million-row catalog takes seconds; the event loop
must keep its heartbeat) and stops early when the actor stops.

What the Algorithm keeps across a reload, so that no pair is decided twice in a tick and none loses
its last price (its state is keyed by the pair's ``(book, strategy)``, never by a Config object):

* the last tick seq handled: the new config applies from the next tick, never to the current one;
* the set of pairs with a decision in flight: a pair still deciding under the old config finishes
  with it, and is not started again for the same tick under the new one;
* each pair's last decided price (:func:`kept_prices`): a pair still in the new config, paused or
  not, keeps it (the step limit holds across a reload); pairs the new config dropped are forgotten,
  so the map stays bounded by the pairs configured.

``apply(new)`` is called on the event loop, between two ticks' dispatches (it is synchronous), so a
tick is always dispatched against one whole config. It may still refuse a valid config (the Algorithm's
roster: over ``limits.BOOKS_MAX`` pairs tracked); that reload is refused like a bad file: counted in
``config_reload_errors``, logged, and the running config stays the reloader's current one.

A loaded config's warnings (the catalog's bad rows) are logged by :func:`log_warnings`, the same at
start and on each reload, through a :class:`RateLimitedLog` that lets one load's lines through.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Final

from actors.pricing.config import Config, ConfigError, load_config
from actors.pricing.config.catalog import WARNINGS_MAX
from transport.logs import RateLimitedLog

log = logging.getLogger("algorithm.config")
Signature = tuple[tuple[str, int, int, int] | tuple[str, None, None, None], ...]
_STOP_POLL: Final = 0.2  # how often a stopping actor looks at a reload in its thread
# A load's warnings: the catalog's and the guardrails' own (a step narrower than the ending's spacing).
WARNINGS_BURST: Final = WARNINGS_MAX + 1
_WARNING_CHARS: Final = 500  # a catalog summary names up to a dozen reasons


def warnings_log(logger: logging.Logger = log) -> RateLimitedLog:
    """The log of loaded configs' warnings: one load's lines per minute, then only counted (a file
    changing every poll must not flood stderr; the ``catalog_*`` counters still say it all)."""
    return RateLimitedLog(logger, burst=WARNINGS_BURST, limit=_WARNING_CHARS)


def log_warnings(rlog: RateLimitedLog | None, config: Config) -> None:
    """Log what loading ``config`` skipped (the catalog's summary first, then examples by line); None:
    another process says them (the config's warnings are the same in every worker)."""
    if rlog is None:
        return
    for warning in config.warnings:
        rlog.warning("config_warnings", "%s", warning)


def reload_config(path: str | Path, *, tick: float | None = None,
                  cancel: threading.Event | None = None) -> Config | ConfigError:
    """Read and validate the config at ``path`` anew: the new Config, or the error naming file, line
    and key (the caller keeps its old config). Never raises for a bad config."""
    try:
        return load_config(path, tick=tick, cancel=cancel)
    except ConfigError as exc:
        return exc


def kept_prices(last: Mapping[tuple[str, str], Decimal], config: Config) -> dict[tuple[str, str], Decimal]:
    """The last decided prices of the pairs the new config still has (paused or not)."""
    return {pair.key: last[pair.key] for pair in config.pairs if pair.key in last}


def signature(files: Iterable[str]) -> Signature:
    """What changes when a file is edited, replaced or deleted (mtime, size, inode)."""
    out: list[tuple[str, int, int, int] | tuple[str, None, None, None]] = []
    for name in files:
        try:
            info = os.stat(name)
        except OSError:
            out.append((name, None, None, None))
        else:
            out.append((name, info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(out)


def describe(old: Config, new: Config) -> str:
    """One log line saying what a reload changed."""
    guarded = len(new.guardrail_overrides)
    return (f"{len(new.pairs)} pair(s) (was {len(old.pairs)}), {len(new.paused_books)} paused book(s), "
            f"{len(new.paused_strategies)} paused strateg(ies), guardrails "
            f"{'on, ' + str(guarded) + ' book(s) with their own' if new.has_guardrails else 'off'}")


class ConfigReloader:
    """Reloads ``path`` when :meth:`request` is called (wire it to SIGHUP) and, with ``poll``
    seconds, when one of the files the config read changes; calls ``apply(new)`` on success, which
    returns None once it took the config, or why it cannot (then the reload is refused).
    Requests arriving during a reload are merged into one more reload after it."""

    def __init__(self, path: str | Path, config: Config, apply: Callable[[Config], str | None], *,
                 tick: float | None = None, poll: float | None = None, logger: logging.Logger = log,
                 warnings: RateLimitedLog | None = None, say_warnings: bool = True) -> None:
        if poll is not None and not 0.1 <= poll <= 3600:
            raise ValueError("poll must be within 0.1..3600 seconds")
        self.config = config
        self.counters: dict[str, int] = {"config_reloads": 0, "config_reload_errors": 0}
        self._path = Path(path)
        self._apply = apply
        self._tick = tick
        self._poll = poll
        self._log = logger
        self._rlog = RateLimitedLog(logger)  # a SIGHUP storm reloads again and again: its lines are bounded
        self._warnings = (warnings or warnings_log(logger)) if say_warnings else None
        self._wanted = asyncio.Event()
        self._seen = signature(config.files or (str(self._path),))

    def know_tick(self, interval: float) -> None:
        """The tick interval now in use: a reloaded strategy's delay must be shorter than it."""
        self._tick = interval

    def request(self) -> None:
        """Ask for a reload (safe from a signal handler installed with ``loop.add_signal_handler``)."""
        self._wanted.set()

    async def _wait(self, stop: asyncio.Event) -> bool:
        """Wait for a request, a poll interval or the stop; True if a reload is due."""
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wanted.wait())}
        try:
            await asyncio.wait(waits, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if stop.is_set():
            return False
        if self._wanted.is_set():
            self._wanted.clear()
            return True
        now = signature(name for name, *_ in self._seen)
        return now != self._seen

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await self._wait(stop):
                continue
            before = signature(name for name, *_ in self._seen)
            cancel = threading.Event()
            loading = asyncio.ensure_future(asyncio.to_thread(reload_config, self._path, tick=self._tick,
                                                              cancel=cancel))
            try:
                while not loading.done():
                    await asyncio.wait({loading}, timeout=_STOP_POLL)
                    if stop.is_set():
                        cancel.set()  # the thread sees it within a few thousand lines; then we return
            finally:
                if not loading.done():  # cancelled from outside: the thread must not outlive us by long
                    cancel.set()
            try:
                result = loading.result()
            except Exception as exc:  # a bug, not a bad config: keep the running config and serving
                self._log.exception("config reload failed, the running config stays")
                result = ConfigError(f"{self._path}: reload failed: {exc!r}")
            if stop.is_set():
                return
            self._done(result, before)

    def _refuse(self, reason: str, before: Signature) -> None:
        self._seen = before  # polling retries only when a file changes again
        self.counters["config_reload_errors"] += 1
        self._rlog.error("reload_refused", "config reload refused, the running config stays: %s", reason)

    def _done(self, result: Config | ConfigError, before: Signature) -> None:
        if isinstance(result, ConfigError):
            self._refuse(str(result), before)
            return
        refusal = self._apply(result)  # before it becomes ours: the Algorithm may still refuse it
        if refusal is not None:
            self._refuse(refusal, before)
            return
        # Files read before too keep the stat taken before the load, so a change during it is seen
        # by the next poll; files new to this config are stat'ed now.
        known = {entry[0]: entry for entry in before}
        fresh = {entry[0]: entry for entry in signature(n for n in result.files if n not in known)}
        self._seen = tuple(known[name] if name in known else fresh[name] for name in result.files)
        old, self.config = self.config, result
        self.counters["config_reloads"] += 1
        self._rlog.info("reloaded", "config %s reloaded: %s", self._path, describe(old, result))
        log_warnings(self._warnings, result)
