"""A pair's decisions as a CSV download: streamed in chunks straight from the Ledger, bounded in rows,
in downloads at once and in how long a client may stall."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Final

from aiohttp import web

from actors.dashboard import rows
from actors.dashboard.ledger import LedgerBusy, LedgerReads, LedgerUnavailable
from actors.dashboard.params import Cursor
from actors.dashboard.rows import PairRow
from transport.logs import RateLimitedLog

log = logging.getLogger("dashboard")

CSV_CHUNK: Final = 1000  # decisions per query and per write
CSV_MAX_ROWS: Final = 1_000_000  # one download holds at most this many (the newest) decisions
CSV_AT_ONCE: Final = 2  # downloads streaming at the same time; more get a 503
WRITE_TIMEOUT: Final = 10.0  # a client that reads nothing for this long is dropped
_FILENAME: Final = re.compile(r"[^A-Za-z0-9._-]+")


class CsvDownloads:
    def __init__(self, ledger: LedgerReads) -> None:
        self._ledger = ledger
        self._rlog = RateLimitedLog(log)
        self._running = 0
        self.counters = {"csv_downloads": 0, "csv_aborted": 0}

    async def serve(self, request: web.Request, book: str, pairs: list[PairRow]) -> web.StreamResponse:
        """Every decision of ``pairs`` (one book's), newest first, pair after pair."""
        if self._running >= CSV_AT_ONCE:
            raise LedgerBusy(f"{self._running} CSV downloads already streaming")
        strategy = pairs[0].strategy if len(pairs) == 1 else ""
        name = _FILENAME.sub("_", f"decisions-{book}" + (f"-{strategy}" if strategy else ""))[:100]
        response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                               "Content-Disposition": f'attachment; filename="{name}.csv"'})
        self._running += 1
        self.counters["csv_downloads"] += 1
        try:
            await response.prepare(request)
            await self._stream(response, book, pairs)
            await response.write_eof()
        except (LedgerUnavailable, LedgerBusy, TimeoutError, ConnectionError) as e:
            # The status line is gone: end the connection so the client sees a failed download, never
            # a short file that looks complete.
            self.counters["csv_aborted"] += 1
            self._rlog.warning("csv_aborted", "CSV download of %s aborted: %s", book, e)
            if request.transport is not None:
                request.transport.abort()
        finally:
            self._running -= 1
        return response

    async def _stream(self, response: web.StreamResponse, book: str, pairs: list[PairRow]) -> None:
        sent = 0
        await response.write(rows.csv_lines([], header=True))
        for pair in pairs:
            before: Cursor | None = None
            while sent < CSV_MAX_ROWS:
                chunk = await self._ledger.decisions(book, pair.strategy, before, min(CSV_CHUNK, CSV_MAX_ROWS - sent))
                if not chunk:
                    break
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await response.write(rows.csv_lines(chunk))
                sent += len(chunk)
                before = chunk[-1].cursor
