"""The Ledger: keeps every decision the Algorithm workers send it, in SQLite, and tells a restarted
worker the last price it decided for each of its pairs.

On its ROUTER socket it takes two requests from the workers' DEALERs (and the Dashboard's reads, a
:class:`LedgerQuery`, answered by :mod:`actors.ledger.reads` on a thread of its own): a :class:`LedgerBatch` of
decisions (read straight into rows by :mod:`transport.ledger_rows` when all are plainly valid),
answered by a :class:`LedgerAck` of the same batch id once the batch is committed (or with the
reason it was not), and a :class:`LastDecidedRequest`, answered from the ``pairs`` table. Each
decision is checked against the system's limits before it is kept; garbage frames, messages of the
wrong kind and bad decisions are counted and logged (rate-limited, peer text escaped). The database
work runs on its own thread (:mod:`actors.ledger.writer`), so the event loop keeps beating and
answering while SQLite writes; the receive loop yields after a bounded number of frames, so a
flooding peer cannot starve it.

``python -m actors.ledger [serve]`` runs it; ``python -m actors.ledger history|summary --help`` read
the database (see :mod:`actors.ledger.cli`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import zmq
import zmq.asyncio

from actors import runtime
from actors.alert_rules import Thresholds
from actors.kinds import LEDGER
from actors.ledger.alerting import Alerting, load_thresholds
from actors.ledger.options import LedgerOptions
from actors.ledger.reads import ReadServer, opening_guard
from actors.ledger.records import to_row
from actors.ledger.store import LedgerStore
from actors.ledger.writer import LedgerWriter, PendingBatch, PendingQuery
from actors.probes import READY, Readiness, not_ready
from transport import ledger_rows, protocol
from transport.ledger_rows import DecisionRow
from transport.logs import FrameDecoder, RateLimitedLog, printable
from transport.protocol import LastDecidedReply, LastDecidedRequest, LedgerBatch, LedgerQuery, Message
from transport.roles import LEDGER_CHANNEL, LEDGER_WRITERS, may_write_ledger
from transport.sockets import Sockets

log = logging.getLogger(LEDGER.name)

# Work done before the receive loop yields to the event loop: a small frame counts 1, a batch of
# decisions (~2 ms to decode and check 200) counts a whole burst, so the loop never waits on more
# than one batch.
RECEIVE_BURST: Final = 16


class Ledger:
    name = LEDGER.name

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], options: LedgerOptions,
                 clock: Callable[[], float] = time.monotonic, thresholds: Thresholds | None = None) -> None:
        """``clock`` schedules the database retries and retention steps (a test's is moved by hand)."""
        self._sockets = sockets
        self.endpoint = options.ledger_endpoint
        self._store = LedgerStore(options.db, options.synchronous, options.max_db_bytes)
        self._writer = LedgerWriter(self._store, options.retention, options.db_retry, self._send, clock,
                                    quick_check_every=options.quick_check_every)
        thresholds = thresholds or load_thresholds(options.config)  # main() read them already, to refuse them
        self._alerting = Alerting(options.config, thresholds, lambda: self._writer.counters["nacks"],
                                  self._writer.submit_alerts, self._writer.open_alerts)
        self._reads = ReadServer(self._store.path, self._send_frame, writing=lambda: self._writer.writing,
                                 may_open=opening_guard(self._store.path, lambda: self._store.opened_files))
        self._sock: zmq.asyncio.Socket | None = None
        self._rlog = RateLimitedLog(log)
        self._counters: dict[str, int] = {
            "frames": 0, "bad_frames": 0, "batches": 0, "decisions": 0, "rejected": 0, "queries": 0,
            "replies_dropped": 0, "writes_refused": 0,
        }
        self._frames = FrameDecoder(self._counters, "bad_frames", self._rlog, "bad_frame", "rejected a frame")

    @property
    def counters(self) -> dict[str, int]:
        return {**self._counters, **self._writer.counters, "queued": self._writer.queued, **self._reads.counters,
                **self._writer.alerts.counters, **self._alerting.counters}

    def readiness(self) -> Readiness:
        """Ready when it listens and its database is open: batches get committed, queries answered."""
        if self._sock is None:
            return not_ready(f"not yet bound to {self.endpoint}")
        if not self._writer.counters.get("db_open"):
            return not_ready(f"database {self._store.path} not open (the log says why)")
        return READY

    async def run(self, stop: asyncio.Event) -> None:
        # Every batch makes ~1,000 short-lived containers, so the cyclic GC runs often; its full
        # collections also walked every object of the start-up (modules, classes): ~15-35 ms event-
        # loop stalls measured. Frozen, they are left out of every collection.
        gc.freeze()
        sock = self._sock = self._sockets.router(self.endpoint, channel=LEDGER_CHANNEL)
        log.info("keeping decisions in %s; listening on %s", self._store.path, self.endpoint)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as group:
                # SIGHUP: the alert thresholds again (without a handler SIGHUP kills)
                loop.add_signal_handler(signal.SIGHUP, lambda: group.create_task(self._alerting.reload()))
                tasks = [group.create_task(self._writer.run()), group.create_task(self._receive(sock)),
                         group.create_task(self._alerting.run(stop))]
                await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            await self._reads.stop()
            sock.close(linger=0)

    # --- the socket edge -------------------------------------------------------------------------

    async def _receive(self, sock: zmq.asyncio.Socket) -> None:
        if self._sockets.security.keys is not None:
            await self._receive_by_role(sock)
            return
        while True:
            work = self._on_frames(await sock.recv_multipart())
            drained = False
            while work < RECEIVE_BURST:
                try:
                    frames = await sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    drained = True
                    break
                work += self._on_frames(frames)
            # Batches that arrived together are written together (writer.HOLD_MAX): the writer waits
            # while more frames are here to read.
            self._writer.arriving(not drained and bool(int(sock.get(zmq.EVENTS)) & zmq.POLLIN))
            # pyzmq hands back already-completed futures while frames are queued: without this, a
            # flooding peer would keep the loop here and the writer would never get its results.
            await asyncio.sleep(0)

    async def _receive_by_role(self, sock: zmq.asyncio.Socket) -> None:
        """With keys: each message with its sender's role (the ZAP ``User-Id``), so that only a writer's
        key stores decisions (``transport.roles.LEDGER_WRITERS``); the Dashboard's key may read only."""
        while True:
            work = self._on_message(await sock.recv_multipart(copy=False))
            drained = False
            while work < RECEIVE_BURST:
                try:
                    message = await sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    drained = True
                    break
                work += self._on_message(message)
            self._writer.arriving(not drained and bool(int(sock.get(zmq.EVENTS)) & zmq.POLLIN))  # as in _receive
            # pyzmq hands back already-completed futures while frames are queued: without this, a
            # flooding peer would keep the loop here and the writer would never get its results.
            await asyncio.sleep(0)

    def _send(self, identity: bytes, message: Message) -> None:
        self._send_frame(identity, protocol.encode(message))

    def _send_frame(self, identity: bytes, frame: bytes) -> None:
        if self._sock is None:
            return
        # Through the asyncio socket (it re-arms its receive wake-ups after a send); NOBLOCK sends
        # complete at once, so the future is done here: a full queue or a gone peer is only counted,
        # the client asks again.
        sent = asyncio.ensure_future(self._sock.send_multipart([identity, frame], zmq.NOBLOCK))
        if not sent.done():
            sent.add_done_callback(self._sent)
        else:
            self._sent(sent)

    def _sent(self, sent: asyncio.Future[Any]) -> None:
        if sent.cancelled() or sent.exception() is not None:
            self._counters["replies_dropped"] += 1

    def _on_message(self, message: list[zmq.Frame]) -> int:
        try:
            user_id = message[0].get("User-Id")
        except zmq.ZMQError:  # no user id: not a CURVE connection (cannot happen on a socket with keys)
            user_id = None
        role = user_id if isinstance(user_id, str) else None
        return self._on_frames([frame.bytes for frame in message], may_write_ledger(role), role)

    def _on_frames(self, frames: list[bytes], may_write: bool = True, role: str | None = None) -> int:
        """Handle one message; return the work it cost (see RECEIVE_BURST). ``may_write``: whether its
        sender may store decisions (always, without keys)."""
        self._counters["frames"] += 1
        read = ledger_rows.read_batch(frames[1]) if may_write and len(frames) == 2 else None
        if read is not None:  # the usual batch, every decision valid: read straight into rows
            batch_id, rows = read
            self._counters["batches"] += 1
            self._counters["decisions"] += len(rows)
            self._alerting.observe(rows)
            self._writer.submit_batch(PendingBatch(frames[0], batch_id, rows, 0))
            return RECEIVE_BURST
        routed = self._frames.routed(frames, LedgerBatch, LastDecidedRequest, LedgerQuery)
        if routed is None:
            return 1 + sum(map(len, frames)) // 4096
        identity, message = routed
        if isinstance(message, LedgerBatch) and not may_write:
            self._counters["writes_refused"] += 1
            self._rlog.warning("write_refused", "refused a LedgerBatch from a client whose key is of role %s: only %s "
                               "keys may store decisions", printable(role or "none"), ", ".join(sorted(LEDGER_WRITERS)))
            return 1
        if isinstance(message, LedgerBatch):
            self._on_batch(identity, message)
            return RECEIVE_BURST
        if isinstance(message, LedgerQuery):
            self._reads.submit(identity, message)  # the Dashboard's read: on its own thread, bounded
            return 1
        self._on_query(identity, message)
        return 1

    def _on_batch(self, identity: bytes, batch: LedgerBatch) -> None:
        self._counters["batches"] += 1
        self._counters["decisions"] += len(batch.decisions)
        rows: list[DecisionRow] = []
        rejected = 0
        for decision in batch.decisions:
            row = to_row(decision)
            if not isinstance(row, str):
                rows.append(row)
                continue
            rejected += 1
            reason = row
            self._rlog.warning("bad_decision", "rejected decision book=%s strategy=%s run=%r tick=%d of batch %d: %s",
                               decision.book, decision.strategy, decision.run, decision.tick, batch.batch_id, reason)
        self._counters["rejected"] += rejected
        self._alerting.observe(rows)
        self._writer.submit_batch(PendingBatch(identity, batch.batch_id, rows, rejected))

    def _on_query(self, identity: bytes, request: LastDecidedRequest) -> None:
        self._counters["queries"] += 1
        if not request.pairs:  # a probe: answered on the loop, without the database
            self._send(identity, LastDecidedReply(request.request_id, (), ()))
            return
        self._writer.submit_query(PendingQuery(identity, request))


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(LEDGER, LedgerOptions, __doc__, argv)
    try:
        thresholds = load_thresholds(options.config)
    except ValueError as exc:
        print(f"ledger: {exc}", file=sys.stderr)
        return runtime.CONFIGURATION_ERROR
    return runtime.run_actor(LEDGER.name, lambda sockets: Ledger(sockets, options, thresholds=thresholds),
                             runtime_options, liveness)
