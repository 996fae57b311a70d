"""The Algorithm's side of the Ledger: a DEALER that sends every decision to the Ledger in batches and
forgets it only when the Ledger acknowledges it (:mod:`actors.algorithm.clients.outbox`), and asks the
Ledger for the last decided price of pairs (the resume after a restart).

Where the decisions come from:

* **a spool** (the default, :mod:`actors.algorithm.spool`): each decision is on the worker's disk
  before it is printed; the client reads committed decisions from the spool as its outbox has room and
  tells the spool which the Ledger acknowledged. Nothing is dropped; a Ledger that is down only lets
  the spool grow.
* **memory** (``--no-spool``): :meth:`LedgerClient.submit` after printing; a full outbox drops the new
  decision with a log line and a counter (``ledger_dropped``), and a killed worker loses its outbox.

Reliability is the ZeroMQ guide's *Lazy Pirate* pattern: every batch and every query has a timeout; a
batch not acknowledged in time is sent again (same id: the Ledger's insert is idempotent); when a
timeout finds nothing at all came back since the socket was opened, the Ledger is presumed dead and
the socket is closed and reopened, so nothing queued towards a dead peer is delivered late. Nothing
here blocks pricing. :attr:`LedgerClient.answering` says whether the Ledger is keeping its side (its
last answer an acknowledgement, no batch overdue): only then may a worker wait for it (backpressure).

Use (the owner's TaskGroup runs :meth:`run`)::

    ledger = LedgerClient(sockets, endpoint, spool=spool)   # or without a spool: ledger.submit(decision)
    group.create_task(ledger.run())
    found = await ledger.last_decided([(book, strategy), ...])  # {} parts when no Ledger answers
    await ledger.flush(timeout, quiet)                           # on a clean stop
    ledger.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import NamedTuple

import zmq
import zmq.asyncio

from actors.algorithm.clients.outbox import NEVER, Batch, LedgerPolicy, Outbox
from actors.algorithm.spool.spool import Spool
from transport import limits, protocol
from transport.logs import RateLimitedLog
from transport.protocol import (
    Decision,
    LastDecidedReply,
    LastDecidedRequest,
    LedgerAck,
    ProtocolError,
)
from transport.roles import LEDGER_CHANNEL
from transport.sockets import Sockets

log = logging.getLogger(__name__)

Pair = tuple[str, str]  # (book, strategy)


class LastDecided(NamedTuple):
    """A pair's newest decision the Ledger keeps: its price, and the run (t0) and tick it was for (a tick
    of -1: the Ledger did not say)."""

    price: Decimal
    run: float
    tick: int
RECEIVE_BURST = 64  # frames handled before the receive loop yields
CONNECT_POLL = 0.05  # seconds between send attempts while no Ledger is connected (queries only)


class PirateDealer:
    """A DEALER towards one endpoint that can be closed and reopened (the guide's Lazy Pirate), with a
    receive loop that survives the reopen; it remembers when it last heard anything."""

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], endpoint: str, clock: Callable[[], float]) -> None:
        self._sockets = sockets
        self.endpoint = endpoint
        self._clock = clock
        self.socket = sockets.dealer([endpoint], channel=LEDGER_CHANNEL)
        self.heard_at = clock()  # last frame received, or socket (re)opened

    async def send(self, frame: bytes) -> bool:
        """Send at once; False if no peer is connected (IMMEDIATE: nothing is queued for a dead peer)."""
        try:
            await self.socket.send(frame, zmq.NOBLOCK)  # a NOBLOCK send completes (or fails) at once
        except zmq.Again:
            return False
        return True

    def reopen(self) -> None:
        old, self.socket = self.socket, self._sockets.dealer([self.endpoint], channel=LEDGER_CHANNEL)
        self.heard_at = self._clock()
        old.close(linger=0)

    async def receive(self, on_frame: Callable[[bytes], None]) -> None:
        """Hand every frame to ``on_frame`` until cancelled. A reopen closes the socket under a pending
        recv, whose cancellation is told apart from our own by ``Task.cancelling()``."""
        while True:
            sock = self.socket
            try:
                frames = [await sock.recv()]
                for _ in range(RECEIVE_BURST - 1):
                    try:
                        frames.append(await sock.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or sock is self.socket:
                    raise
                continue
            except zmq.ZMQError:
                if sock is self.socket:
                    raise
                continue
            self.heard_at = self._clock()
            for frame in frames:
                on_frame(frame)
            await asyncio.sleep(0)  # queued frames come back as done futures: yield at a bound

    def close(self) -> None:
        self.socket.close(linger=0)


class LedgerClient:
    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], endpoint: str, policy: LedgerPolicy | None = None,
                 on_ack: Callable[[tuple[bytes, ...]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, spool: Spool[Decision] | None = None) -> None:
        """``on_ack`` is called with the records of each batch the Ledger has committed. With ``spool``
        the decisions are read from it (:meth:`submit` is not used)."""
        self._policy = policy or LedgerPolicy()
        self._on_ack = on_ack
        self._clock = clock
        self._spool = spool
        # With a spool the outbox is a read-ahead window of it: a few batches beyond those in flight.
        window = self._policy.batch_max * (self._policy.in_flight + 2)
        self._outbox = Outbox(self._policy if spool is None else replace(self._policy, outbox_max=window))
        self._seqs = itertools.count(1)  # without a spool, the client numbers the decisions itself
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # an acknowledgement freed room in the outbox
        self._acked = asyncio.Event()  # something was acknowledged (flush looks again)
        self._answering = True  # the last answer was an acknowledgement (or nothing was sent yet)
        self._queries: dict[int, asyncio.Future[LastDecidedReply]] = {}  # one per query in flight
        self._query_ids = itertools.count(1)
        self._dealer = PirateDealer(sockets, endpoint, clock)
        self._rlog = RateLimitedLog(log)
        self.counters: dict[str, int] = {
            "ledger_submitted": 0, "ledger_acked": 0, "ledger_stored": 0, "ledger_duplicates": 0,
            "ledger_rejected": 0, "ledger_dropped": 0, "ledger_outbox": 0, "ledger_batches_sent": 0,
            "ledger_resends": 0, "ledger_refusals": 0, "ledger_unconnected": 0, "ledger_reopens": 0,
            "ledger_bad_frames": 0, "ledger_stale_acks": 0, "ledger_resumed": 0, "ledger_resume_fallbacks": 0,
        }

    # --- decisions -------------------------------------------------------------------------------

    def submit(self, decision: Decision) -> bool:
        """Without a spool: hand ``decision`` to the Ledger; never blocks. False if the outbox is full
        (logged, counted, the decision is not kept)."""
        if not self._outbox.add(next(self._seqs), protocol.decision_record(decision), self._clock()):
            self.counters["ledger_dropped"] += 1
            self._rlog.warning("outbox_full", "ledger outbox full (%d decisions unacknowledged): decision "
                               "book=%s strategy=%s tick=%d not kept in the ledger", len(self._outbox),
                               decision.book, decision.strategy, decision.tick)
            return False
        self._added(1)
        return True

    def _added(self, count: int) -> None:
        self.counters["ledger_submitted"] += count
        self.counters["ledger_outbox"] = len(self._outbox)
        waiting = self._outbox.unsent
        if waiting == count or waiting >= self._policy.batch_max:  # arm the linger timer, or a batch is full
            self._wake.set()

    @property
    def answering(self) -> bool:
        """Whether the Ledger keeps up its side: its last answer acknowledged a batch and no batch waits
        past the acknowledgement timeout. A Ledger down, stopped, refusing (disk full) or silent is not."""
        return self._answering and not self._outbox.overdue(self._clock())

    async def flush(self, timeout: float, quiet: float | None = None) -> bool:  # noqa: ASYNC109 - a bound on the drain
        """Send what is left at once and wait until the Ledger acknowledged all of it: at most
        ``timeout`` seconds in all, and no longer than ``quiet`` seconds without an acknowledgement (a
        Ledger that keeps acknowledging is waited for; a silent one is not). True if nothing is left
        unacknowledged (with a spool, what is left stays in it for the next start)."""
        self._outbox.flushing = True
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                while self.unacknowledged:
                    self._acked.clear()
                    async with asyncio.timeout(quiet):
                        await self._acked.wait()
        except TimeoutError:
            self._rlog.warning("flush", "%d decision(s) not acknowledged by the Ledger at the stop%s",
                               self.unacknowledged,
                               ": kept in the spool for the next start" if self._spool is not None else "")
            return False
        return True

    @property
    def unacknowledged(self) -> int:
        return len(self._outbox) if self._spool is None else self._spool.backlog

    # --- the loops -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Send batches and receive replies until cancelled; run it in the owner's TaskGroup."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._dealer.receive(self._on_frame))
            group.create_task(self._send_loop())
            if self._spool is not None:
                group.create_task(self._feed(self._spool))

    async def _feed(self, spool: Spool[Decision]) -> None:
        """Read committed decisions from the spool into the outbox as it has room."""
        window = self._policy.batch_max * (self._policy.in_flight + 2)
        while True:
            room = window - len(self._outbox)
            if room < self._policy.batch_max:
                self._room.clear()
                await self._room.wait()
                continue
            await spool.wait_readable()
            records = await spool.read(room)
            now = self._clock()
            for seq, record in records:
                if not self._outbox.add(seq, record, now):  # read() gives at most ``room``: never
                    raise RuntimeError(f"the outbox refused decision {seq} read from the spool")
            if records:
                self._added(len(records))

    async def _send_loop(self) -> None:
        while True:
            now = self._clock()
            if self._outbox.overdue(now) and now - self._dealer.heard_at >= self._policy.ack_timeout:
                self._reopen(now)
            batch = self._outbox.next_batch(now)
            if batch is not None:
                await self._send_batch(batch, now)
                continue
            due = self._outbox.next_due(now)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if due == NEVER else max(0.0, due - now)):
                    await self._wake.wait()

    async def _send_batch(self, batch: Batch, now: float) -> None:
        if not await self._dealer.send(protocol.ledger_batch_frame(batch.batch_id, batch.records)):
            self._outbox.refused(batch.batch_id, now)  # no Ledger connected: wait and try again
            self._answering = False
            self.counters["ledger_unconnected"] += 1
            self._rlog.warning("no_ledger", "no Ledger connected at %s: %d decision(s) wait in the outbox",
                               self._dealer.endpoint, len(self._outbox))
            return
        self.counters["ledger_batches_sent"] += 1
        if batch.sends > 1:
            self.counters["ledger_resends"] += 1

    def _on_frame(self, frame: bytes) -> None:
        try:
            message = protocol.decode(frame)
        except ProtocolError as exc:
            self._bad_frame(str(exc))
            return
        if isinstance(message, LedgerAck):
            self._on_ack_frame(message)
        elif isinstance(message, LastDecidedReply):
            future = self._queries.pop(message.request_id, None)
            if future is not None and not future.done():
                future.set_result(message)
        else:
            self._bad_frame(f"unexpected {type(message).__name__}")

    def _bad_frame(self, reason: str) -> None:
        self.counters["ledger_bad_frames"] += 1
        self._rlog.warning("bad_frame", "rejected a frame from the Ledger: %s", reason)

    def _on_ack_frame(self, ack: LedgerAck) -> None:
        if ack.error:
            self._answering = False
            if self._outbox.refused(ack.batch_id, self._clock()):
                self.counters["ledger_refusals"] += 1
                self._rlog.warning("refused", "the Ledger could not store a batch (%s): sending it again later",
                                   ack.error)
            self._wake.set()
            return
        batch = self._outbox.acknowledged(ack.batch_id)
        if batch is None:
            self.counters["ledger_stale_acks"] += 1  # acknowledged before (a resend crossed its ack)
            return
        self._answering = True
        self.counters["ledger_acked"] += len(batch.seqs)
        self.counters["ledger_stored"] += ack.stored
        self.counters["ledger_duplicates"] += ack.duplicates
        self.counters["ledger_rejected"] += ack.rejected
        self.counters["ledger_outbox"] = len(self._outbox)
        if self._spool is not None:
            self._spool.acknowledged(batch.seqs)
        self._acked.set()
        self._room.set()
        self._wake.set()  # a slot in flight came free
        if self._on_ack is not None:
            self._on_ack(batch.records)

    def _reopen(self, now: float) -> None:
        self._answering = False
        self.counters["ledger_reopens"] += 1
        self._rlog.warning("reopen", "Ledger silent for %.1fs: reopening the socket (Lazy Pirate)",
                           self._policy.ack_timeout)
        self._dealer.reopen()
        self._outbox.resend_all(now)

    # --- resume ----------------------------------------------------------------------------------

    async def last_decided(self, pairs: Sequence[Pair]) -> dict[Pair, LastDecided]:
        """The last decision of each pair the Ledger knows, asked in batches. Pairs it does not
        know are left out; if the Ledger does not answer within ``resume_timeout`` in all, the pairs not
        yet answered are left out too (logged, counted in ``ledger_resume_fallbacks``): the caller
        prices those as if new. Needs :meth:`run` running."""
        found: dict[Pair, LastDecided] = {}
        stamps: list[float] = []
        deadline = self._clock() + self._policy.resume_timeout
        step = limits.LEDGER_QUERY_MAX
        for start in range(0, len(pairs), step):
            chunk = tuple(pairs[start:start + step])
            reply = await self._query(chunk, deadline)
            if reply is None:
                missing = len(pairs) - start
                self.counters["ledger_resume_fallbacks"] += missing
                self._rlog.warning("resume", "no answer from the Ledger at %s within %.1fs: %d pair(s) start "
                                   "from the average", self._dealer.endpoint, self._policy.resume_timeout, missing)
                break
            told = len(reply.ticks) == len(chunk)
            for i, (pair, price) in enumerate(zip(chunk, reply.prices, strict=True)):
                if price is not None:
                    found[pair] = LastDecided(price, reply.runs[i] if told else 0.0, reply.ticks[i] if told else -1)
                    stamps.append(reply.ts[i])
        self.counters["ledger_resumed"] += len(found)
        if pairs:
            log.info("%s", resume_line(len(pairs), len(found), stamps, [d.run for d in found.values()]))
        return found

    async def _query(self, pairs: tuple[Pair, ...], deadline: float) -> LastDecidedReply | None:
        """One LastDecidedRequest, retried until ``deadline``; None if it never got an answer."""
        while (left := deadline - self._clock()) > 0:
            request_id = next(self._query_ids)
            future: asyncio.Future[LastDecidedReply] = asyncio.get_running_loop().create_future()
            self._queries[request_id] = future
            try:
                if not await self._dealer.send(protocol.encode(LastDecidedRequest(request_id, pairs))):
                    await asyncio.sleep(min(CONNECT_POLL, left))  # not connected yet (the Ledger may be starting)
                    continue
                try:
                    async with asyncio.timeout(min(self._policy.query_timeout, left)):
                        reply = await future
                except TimeoutError:
                    if self._clock() - self._dealer.heard_at >= self._policy.query_timeout:
                        self._reopen(self._clock())
                    continue
            finally:
                self._queries.pop(request_id, None)
            if not reply.error and len(reply.prices) == len(pairs):
                return reply
            self._rlog.warning("query_refused", "the Ledger did not answer a resume query: %s",
                               reply.error or "wrong number of prices")
            await asyncio.sleep(min(self._policy.retry_min, max(0.0, deadline - self._clock())))
        return None

    def close(self) -> None:
        self._dealer.close()
        for future in self._queries.values():
            future.cancel()
        self._queries.clear()


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def resume_line(asked: int, resumed: int, stamps: Sequence[float], runs: Sequence[float] = ()) -> str:
    """The one line a resume logs: how many pairs took their last price from the Ledger, decided when
    and by which Scheduler run (its start), and how many start from the average."""
    if not resumed:
        return f"resume: none of {asked} pair(s) has a decision in the Ledger: they start from the competitor's average"
    first, last = _utc(min(stamps)), _utc(max(stamps))
    until = last[11:] if first[:10] == last[:10] else last  # the same day: the time alone
    when = f"decided at {last} UTC" if first == last else f"decided {first} to {until} UTC"
    known = sorted({run for run in runs if run > 0})
    which = ("" if not known else f" by the run started {_utc(known[0])} UTC" if len(known) == 1
             else f" by {len(known)} runs started {_utc(known[0])} to {_utc(known[-1])} UTC")
    rest = f"; {asked - resumed} start from the competitor's average (no decision kept)" if resumed < asked else ""
    return f"resumed {resumed} of {asked} pair(s) from the Ledger: their last prices, {when}{which}{rest}"
