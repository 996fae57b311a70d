"""The Ledger's history read over its socket (``--ledger-endpoint``), so the Dashboard runs on any
machine: a DEALER to the Ledger's ROUTER (CurveZMQ with ``--keys``: the Dashboard is one more client
of the Ledger, with its own role's key, which may read, never write), one :class:`LedgerQuery` per
read, its :class:`LedgerQueryReply` matched by request id.

Bounded as the file reader is: at most ``max_pending`` reads wait for an answer (more is
:class:`LedgerBusy` at once); each waits ``timeout`` seconds at most (then :class:`LedgerBusy`: the
Ledger is slow, or the answer was lost); no Ledger connected is :class:`LedgerUnavailable` at once (the
DEALER is ``IMMEDIATE``: nothing queues for a peer that is not there). A reply that does not decode,
or answers a read no longer awaited, is counted (``db_bad_replies``, ``db_late_replies``), logged once
(rate-limited) and dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Final

import zmq
import zmq.asyncio

from actors.dashboard.ledger import LedgerBusy, LedgerReads, LedgerUnavailable
from actors.kinds import DASHBOARD
from actors.ledger_reads.pool import counted_refusals
from transport import protocol
from transport.logs import FrameDecoder, RateLimitedLog
from transport.protocol import LedgerQuery, LedgerQueryReply, QueryStatus
from transport.roles import LEDGER_CHANNEL
from transport.sockets import Sockets

log = logging.getLogger(DASHBOARD.name)

MAX_PENDING: Final = 32
REPLIES_PER_TURN: Final = 64  # the receiver yields to the event loop at least this often


class RemoteLedger(LedgerReads):
    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], endpoint: str, timeout: float = 5.0,
                 max_pending: int = MAX_PENDING) -> None:
        self._sockets = sockets
        self.endpoint = endpoint
        self._timeout = timeout
        self._max_pending = max_pending
        self._sock: zmq.asyncio.Socket | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[LedgerQueryReply]] = {}  # at most max_pending
        self._ids = itertools.count(1)
        self.counters = {"db_queries": 0, "db_errors": 0, "db_unavailable": 0, "db_busy": 0, "db_bad_replies": 0,
                         "db_late_replies": 0}
        self._frames = FrameDecoder(self.counters, "db_bad_replies", RateLimitedLog(log), "bad_ledger_reply",
                                    "rejected a frame from the Ledger")

    @property
    def where(self) -> str:
        return f"the Ledger at {self.endpoint}"

    def source(self) -> dict[str, str]:
        return {"endpoint": self.endpoint}

    def _socket(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            self._sock = self._sockets.dealer([self.endpoint], channel=LEDGER_CHANNEL)
            self._receiver = asyncio.get_running_loop().create_task(self._receive(self._sock))
        return self._sock

    async def _receive(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            for _ in range(REPLIES_PER_TURN):
                self._on_frames(await sock.recv_multipart())
            await asyncio.sleep(0)

    def _on_frames(self, frames: list[bytes]) -> None:
        if len(frames) != 1:
            self.counters["db_bad_replies"] += 1
            return
        reply = self._frames.decode_as(frames[0], LedgerQueryReply)
        if reply is None:
            return
        waiting = self._waiting.get(reply.request_id)
        if waiting is None or waiting.done():
            self.counters["db_late_replies"] += 1  # its reader gave up already (timed out)
            return
        waiting.set_result(reply)

    async def query(self, name: str, args: list[Any]) -> Any:
        if len(self._waiting) >= self._max_pending:
            self.counters["db_busy"] += 1
            raise LedgerBusy(f"{len(self._waiting)} reads already waiting for the Ledger")
        self.counters["db_queries"] += 1
        with counted_refusals(self.counters):
            reply = await self._ask(name, args)
        if reply.status is QueryStatus.OK:
            return reply.result
        if reply.status is QueryStatus.BUSY:
            self.counters["db_busy"] += 1
            raise LedgerBusy(f"the Ledger is busy: {reply.error}")
        if reply.status is QueryStatus.UNAVAILABLE:
            self.counters["db_unavailable"] += 1
            raise LedgerUnavailable(f"the Ledger at {self.endpoint}: {reply.error}")
        self.counters["db_errors"] += 1  # a read it refused or could not send: a bug, or another version
        raise LedgerUnavailable(f"the Ledger at {self.endpoint} refused the read {name} ({reply.status}): "
                                f"{reply.error}")

    async def _ask(self, name: str, args: list[Any]) -> LedgerQueryReply:
        sock = self._socket()
        request_id = next(self._ids)
        waiting: asyncio.Future[LedgerQueryReply] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiting
        try:
            try:
                await sock.send(protocol.encode(LedgerQuery(request_id, name, tuple(args))), zmq.NOBLOCK)
            except zmq.Again:
                raise LedgerUnavailable(f"the Ledger at {self.endpoint} is not connected (not started or not "
                                        "reachable, or this Dashboard's key not authorized there)") from None
            try:
                async with asyncio.timeout(self._timeout):
                    return await waiting
            except TimeoutError:
                raise LedgerBusy(f"no answer from the Ledger at {self.endpoint} within {self._timeout:g}s") from None
        finally:
            del self._waiting[request_id]

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            self._receiver = None
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        for waiting in self._waiting.values():
            waiting.cancel()
