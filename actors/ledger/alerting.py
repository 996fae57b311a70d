"""The Ledger's alerts, wired: its :class:`~actors.ledger.watch.Watch` fed every batch and a clock,
each change handed to the Ledger's writer for the ``alerts`` table (:mod:`actors.ledger.alert_store`:
on the writer's own connection), POSTed to the webhook
when one is set (:mod:`actors.ledger.webhook`) and logged, one line per change (rate-limited past a
burst); the thresholds read from the ``[alerts]`` table of the repricer's config (``--config``),
again on SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from actors.alert_rules import ALERTS, Thresholds, from_document
from actors.kinds import LEDGER
from actors.ledger.watch import AlertChange, Watch
from actors.ledger.webhook import Webhook
from transport import limits
from transport.ledger_rows import DecisionRow
from transport.logs import RateLimitedLog, printable

log = logging.getLogger(LEDGER.name)

SWEEP_EVERY: Final = 1.0
RESTORE_TIMEOUT: Final = 10.0  # waiting for the database (and its alerts table) at start


def load_thresholds(path: str | None) -> Thresholds:
    """The ``[alerts]`` of the config at ``path`` (the defaults without one); ValueError naming the
    file and the key for one that cannot be read or holds a bad value."""
    if not path:
        return Thresholds()
    try:
        data = Path(path).read_bytes()[:limits.CONFIG_MAX_BYTES + 1]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limits.CONFIG_MAX_BYTES:
        raise ValueError(f"{path}: over the limit of {limits.CONFIG_MAX_BYTES} bytes")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    return from_document(document, path)


def describe(change: AlertChange) -> str:
    subject = (f"book {printable(change.book)} strategy {printable(change.strategy)}" if change.book else
               f"strategy {printable(change.strategy)}" if change.strategy else "the system")
    return f"alert {'raised' if change.raised else 'cleared'}: {ALERTS[change.name].title} for {subject}: " + \
        printable(change.detail, 200)


class Alerting:
    def __init__(self, config: str | None, thresholds: Thresholds, refusals: Callable[[], int],
                 write: Callable[[list[AlertChange]], None],
                 read_open: Callable[[float], Awaitable[list[AlertChange] | None]],
                 wall: Callable[[], float] = time.time) -> None:
        """``write`` queues changes for the ``alerts`` table, ``read_open`` reads its open alerts (waiting
        at most the seconds given for the database): the Ledger's writer does both."""
        self._config = config
        self._refusals = refusals  # batches the Ledger has refused so far
        self._write = write
        self._read_open = read_open
        self._wall = wall
        self.watch = Watch(thresholds)
        self.webhook = Webhook(thresholds.webhook) if thresholds.webhook else None
        self._rlog = RateLimitedLog(log)
        self._reloading = False
        self.counters_extra = {"alerts_reloads": 0, "alerts_reload_errors": 0, "reload_without_config": 0}

    @property
    def counters(self) -> dict[str, int]:
        return {**self.watch.counters, **(self.webhook.counters if self.webhook else {}),
                **self.counters_extra}

    def observe(self, rows: Sequence[DecisionRow]) -> None:
        """A batch's valid rows, as received."""
        if rows:
            self._changed(self.watch.observe(rows, self._wall()))

    def _changed(self, changes: Iterable[AlertChange]) -> None:
        changes = list(changes)
        if not changes:
            return
        self._write(changes)
        for change in changes:
            if self.webhook is not None:
                self.webhook.send(change)
            self._rlog.info(f"alert_{change.name}", "%s", describe(change))

    async def run(self, stop: asyncio.Event) -> None:
        """Restore the open alerts, then sweep once a second; the webhook alongside."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.webhook.run())] if self.webhook is not None else []
            restored = await self._read_open(RESTORE_TIMEOUT)
            if restored is None:
                log.warning("could not read the open alerts back from the database within %.0fs: alerts raised "
                            "before this start are raised again when their condition holds", RESTORE_TIMEOUT)
            elif restored:
                self.watch.restore(restored)
                log.info("%d alert(s) still raised from before this start: %s", len(restored),
                         ", ".join(sorted({ALERTS[a.name].title for a in restored if a.name in ALERTS})))
            while not stop.is_set():
                self._changed(self.watch.sweep(self._wall(), self._refusals()))
                try:
                    async with asyncio.timeout(SWEEP_EVERY):
                        await stop.wait()
                except TimeoutError:
                    pass
            for task in tasks:
                task.cancel()

    async def reload(self) -> None:
        """SIGHUP: read the thresholds again; a config that cannot be read keeps the running ones."""
        # Every line a SIGHUP causes is rate-limited: 1,000 SIGHUPs at 50/s made 1,000 lines (issue 20).
        if self._config is None:
            self.counters_extra["reload_without_config"] += 1
            self._rlog.info("sighup", "SIGHUP: no --config, nothing to reload")
            return
        if self._reloading:
            return
        self._reloading = True
        try:
            thresholds = await asyncio.to_thread(load_thresholds, self._config)
        except ValueError as exc:
            self.counters_extra["alerts_reload_errors"] += 1
            self._rlog.error("sighup_error", "alert thresholds not reloaded, the running ones stay: %s", exc)
            return
        finally:
            self._reloading = False
        self.counters_extra["alerts_reloads"] += 1
        if thresholds.webhook != (self.webhook.url if self.webhook else ""):
            self._rlog.warning("sighup_webhook", "the webhook URL changed in %s: it applies from the Ledger's next "
                               "start", self._config)
        self._changed(self.watch.retune(thresholds, self._wall()))
        self._rlog.info("sighup_reloaded", "alert thresholds reloaded from %s", self._config)
