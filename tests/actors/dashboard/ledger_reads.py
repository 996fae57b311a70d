"""The Dashboard's two readers of the Ledger over one database file, for the page tests: the file
itself (:class:`LedgerReader`), or the Ledger's reads over a socket (:class:`RemoteLedger` to an
in-process ROUTER answered by the Ledger's own :class:`ReadServer`: the messages, the query server and
the network reader as the Ledger runs them, without starting a process)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import zmq
import zmq.asyncio

from actors.dashboard.ledger import LedgerReader, LedgerReads
from actors.dashboard.remote import RemoteLedger
from actors.ledger.reads import ReadServer
from tests.helpers import LoopChoice
from transport import protocol
from transport.protocol import LedgerQuery
from transport.roles import LEDGER_CHANNEL
from transport.sockets import Sockets

# The page tests run on both loops: the file reader on asyncio's, the network reader on uvloop (the
# production loop), so each reader serves every page test once and the suite is no longer for it.
READER_BY_LOOP: Final = {"asyncio": "file", "uvloop": "network"}
_ENDPOINTS: Final = itertools.count()


class Readers:
    """A reader of ``db`` of ``kind`` ("file" or "network"; default: by the test's loop), and
    :meth:`serving`, which runs what the network reader needs (on the test's loop)."""

    def __init__(self, db: Path, kind: str | None = None) -> None:
        self.kind = kind or READER_BY_LOOP[LoopChoice.kind]
        self.db = db
        self._ctx: zmq.asyncio.Context | None = None
        self.server: ReadServer | None = None
        if self.kind == "file":
            self.reader: LedgerReads = LedgerReader(db)
            return
        self._ctx = zmq.asyncio.Context()
        self.endpoint = f"inproc://ledger-reads-{next(_ENDPOINTS)}"
        self.reader = RemoteLedger(Sockets(self._ctx), self.endpoint, timeout=10.0)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        if self._ctx is None:
            yield
            return
        router = Sockets(self._ctx).router(self.endpoint, channel=LEDGER_CHANNEL)

        def send(identity: bytes, frame: bytes) -> None:
            router.send_multipart([identity, frame], zmq.NOBLOCK)  # done at once (NOBLOCK), as the Ledger's

        server = self.server = ReadServer(self.db, send)

        async def pump() -> None:
            while True:
                identity, frame = await router.recv_multipart()
                server.submit(identity, protocol.decode_as(frame, LedgerQuery))

        task = asyncio.get_running_loop().create_task(pump())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.stop()
            router.close(linger=0)

    def close(self) -> None:
        self.reader.close()
        if self._ctx is not None:
            self._ctx.term()
