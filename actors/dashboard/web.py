"""The Dashboard's HTTP side: pages, the JSON API, the CSV download, the live stream and /metrics.

Pages are HTML; ``/api/...`` and the CSV answer errors as JSON ``{"error": "..."}``. Every refusal
(bad parameter, unknown book, page past the end, unknown path, wrong method, Ledger unavailable or
busy, too many live clients) is a clear 4xx/503, counted by reason and logged rate-limited with the
peer's text escaped. Every response carries a Content-Security-Policy that allows only this server's
own scripts and styles.
"""

from __future__ import annotations

import dataclasses
import logging
import stat
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from actors import charts, counter_catalog
from actors.dashboard import books_page, params, rows, series
from actors.dashboard.bounds import BoundsSource
from actors.dashboard.business import Business
from actors.dashboard.csv_download import CsvDownloads
from actors.dashboard.ledger import LedgerBusy, LedgerReads, LedgerUnavailable
from actors.dashboard.live import LiveState
from actors.dashboard.metrics import DashboardMetrics
from actors.dashboard.pages import Pages
from actors.dashboard.params import BadRequest
from actors.dashboard.rows import PairRow
from actors.dashboard.sse import LiveStream, TooManyClients
from transport.logs import RateLimitedLog

log = logging.getLogger("dashboard")

STATIC: Final = Path(__file__).resolve().parent / "static"
HEADERS: Final = MappingProxyType({
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
})
_HTTP_REASONS: Final = MappingProxyType({404: "unknown_path", 405: "bad_method", 413: "too_large"})
# The backtest's report is one self-contained file with inline scripts: served in a sandbox (an opaque
# origin: its scripts reach nothing of this server's), allowed inline code and nothing from anywhere.
REPORT_CSP: Final = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
                     "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
                     "frame-ancestors 'none'")
REPORT_MAX_BYTES: Final = 256 << 20


FAVICON: Final = STATIC / "favicon.ico"


class DashboardWeb:
    def __init__(self, state: LiveState, ledger: LedgerReads, stream: LiveStream, metrics: DashboardMetrics,
                 bounds: BoundsSource, report: Path | None = None, *,
                 business: Callable[[], Business | None] = lambda: None) -> None:
        self.state = state
        self.ledger = ledger
        self.stream = stream
        self.metrics = metrics
        self.bounds = bounds
        self.report = report  # the backtest's last report, if any
        self.business = business  # the newest reading of the Ledger's business (the actor refreshes it)
        self.pages = Pages()
        self._rlog = RateLimitedLog(log)
        self._downloads = 0
        self.csv = CsvDownloads(ledger)
        self.counters = {"http_requests": 0, "refused": 0}

    # --- errors --------------------------------------------------------------------------------

    def _refuse(self, request: web.Request, status: int, reason: str, message: str) -> web.Response:
        self.counters["refused"] += 1
        self.metrics.refused.labels(reason).inc()
        self._rlog.warning(f"refused_{reason}", "refused %s %s: %d %s", request.method, request.path_qs, status,
                           message)
        if request.path.startswith("/api/") or request.path.endswith(".csv") or request.path == "/metrics":
            return web.json_response({"error": message}, status=status)
        title = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 503: "Unavailable"}.get(status, "")
        return web.Response(text=self.pages.error(status, title, message), status=status, content_type="text/html")

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.counters["http_requests"] += 1
        try:
            response = await handler(request)
        except BadRequest as e:
            response = self._refuse(request, e.status, e.reason, e.message)
        except LedgerUnavailable as e:
            response = self._refuse(request, 503, "ledger_unavailable", f"no history: {e}")
        except LedgerBusy as e:
            response = self._refuse(request, 503, "ledger_busy", f"the Ledger database is busy, retry: {e}")
        except TooManyClients as e:
            response = self._refuse(request, 503, "too_many_clients", str(e))
        except web.HTTPException as e:
            if e.status < 400:
                raise
            reason = _HTTP_REASONS.get(e.status, "http_error")
            message = {404: f"no page at {request.path[:80]!r}",
                       405: f"method {request.method[:10]} not allowed on {request.path[:80]!r}"}.get(e.status,
                                                                                                       e.reason)
            response = self._refuse(request, e.status, reason, message)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        self.metrics.http.labels(route, str(response.status)).inc()
        return response

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        report = response.headers.get("Content-Security-Policy") == REPORT_CSP
        response.headers.update(HEADERS)
        if report:
            response.headers["Content-Security-Policy"] = REPORT_CSP
        if request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "max-age=300"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=4096, middlewares=[self._guard])
        app.on_response_prepare.append(self._headers)
        get = app.router.add_get
        get("/", self.overview)
        get("/books", self.books)
        get("/book", self.book)
        get("/book.csv", self.book_csv)
        get("/metrics", self.metrics_page)
        get("/backtest", self.backtest)
        get("/favicon.ico", self.favicon)
        get("/api/overview", self.api_overview)
        get("/api/words", self.api_words)
        get("/api/live", self.stream.serve)
        get("/api/ledger", self.api_ledger)
        get("/api/books", self.api_books)
        get("/api/book", self.api_book)
        get("/api/series", self.api_series)
        for shared in (charts.UPLOT_JS, charts.UPLOT_CSS):  # the vendored chart library, shared with the backtest
            get(f"/static/{shared.name}", self._file(shared))
        app.router.add_static("/static", STATIC, show_index=False, follow_symlinks=False)
        return app

    @staticmethod
    def _file(path: Path) -> Handler:
        async def serve(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(path)
        return serve

    # --- pages ---------------------------------------------------------------------------------

    async def favicon(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(FAVICON, headers={"Content-Type": "image/x-icon", "Cache-Control": "max-age=86400"})

    async def overview(self, request: web.Request) -> web.Response:
        try:
            summary = await self.ledger.summary()
            note = f"History from {self.ledger.where} (schema version {summary['schema_version']})."
        except (LedgerUnavailable, LedgerBusy) as e:
            note = f"No history: {e}."
        return web.Response(text=self.pages.overview(note, self._report_written()), content_type="text/html")

    def _report_written(self) -> float | None:
        """When the backtest's report was written (its mtime), None when there is none to serve."""
        try:
            info = self.report.stat() if self.report is not None else None
        except OSError:
            return None
        return info.st_mtime if info is not None and stat.S_ISREG(info.st_mode) else None

    async def backtest(self, request: web.Request) -> web.StreamResponse:
        """The backtest's last report, as written (a file replaced whole by the backtest)."""
        written = self._report_written()
        if written is None or self.report is None:
            raise BadRequest("no_report", f"no backtest report at {self.report}: python -m actors.algorithm.backtest "
                             "writes one", status=404)
        if self.report.stat().st_size > REPORT_MAX_BYTES:
            raise BadRequest("report_too_large", f"the backtest report is over {REPORT_MAX_BYTES} bytes: open it "
                             "from disk", status=404)
        response = web.FileResponse(self.report, headers={"Content-Security-Policy": REPORT_CSP,
                                                          "Content-Type": "text/html; charset=utf-8"})
        return response

    async def _books_page(self, request: web.Request) -> rows.BooksPage:
        query = params.books_query(request.query)
        reading = self.business()
        runs = None if reading is None else books_page.Runs(reading.current_run, reading.pairs, reading.earlier)
        page = await self.ledger.books(query, runs)
        params.check_page(query, page.total)
        paused = frozenset(r.key for r in page.rows if self.bounds.paused(r.book, r.strategy))
        return dataclasses.replace(page, paused=paused) if paused else page

    async def books(self, request: web.Request) -> web.Response:
        return web.Response(text=self.pages.books(await self._books_page(request)), content_type="text/html")

    async def _pair(self, book: str, strategy: str | None) -> tuple[list[PairRow], PairRow]:
        pairs = rows.configured_first(await self.ledger.pairs_of(book), self.bounds.strategies(book))
        if not pairs:
            raise BadRequest("unknown_book", f"no book {book!r} in the Ledger", status=404)
        if strategy is None:
            return pairs, pairs[0]
        current = next((p for p in pairs if p.strategy == strategy), None)
        if current is None:
            raise BadRequest("unknown_strategy", f"book {book!r} has no strategy {strategy!r} (it has "
                             f"{', '.join(p.strategy for p in pairs)})", status=404)
        return pairs, current

    async def book(self, request: web.Request) -> web.Response:
        query = params.book_query(request.query)
        pairs, current = await self._pair(query.book, query.strategy)
        decisions = await self.ledger.decisions(query.book, current.strategy, query.before, query.limit)
        alerts = await self.ledger.pair_alerts([current.key])
        open_alerts = [*alerts.get(current.key, ()), *alerts.get(("", current.strategy), ())]
        bounds = self.bounds.bounds(query.book, current.strategy)
        text = self.pages.book(query, pairs, current, decisions, bounds, params.SERIES_DEFAULT, open_alerts,
                               paused=self.bounds.paused(current.book, current.strategy))
        return web.Response(text=text, content_type="text/html")

    async def book_csv(self, request: web.Request) -> web.StreamResponse:
        book, strategy = params.book_id(request.query), params.strategy_name(request.query)
        pairs, _ = await self._pair(book, strategy)
        return await self.csv.serve(request, book, [p for p in pairs if strategy is None or p.strategy == strategy])

    async def metrics_page(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render(request.headers.get("Accept"))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    # --- JSON API ------------------------------------------------------------------------------

    async def api_overview(self, request: web.Request) -> web.Response:
        return web.Response(body=self.stream.snapshot_json(), content_type="application/json")

    async def api_words(self, request: web.Request) -> web.Response:
        """What each counter an actor reports means, by kind (the overview's "details" show these words)."""
        words = {kind: {name: d.words for name, d in counters.items()}
                 for kind, counters in counter_catalog.CATALOG.items()}
        prefixes = {kind: {rule.prefix: rule.words for rule in rules}
                    for kind, rules in counter_catalog.BY_LABEL.items()}
        return web.json_response({"words": words, "prefixes": prefixes})

    async def api_ledger(self, request: web.Request) -> web.Response:
        summary: dict[str, Any] = await self.ledger.summary()
        return web.json_response({**self.ledger.source(), **summary})

    async def api_books(self, request: web.Request) -> web.Response:
        return web.json_response((await self._books_page(request)).as_json())

    async def api_book(self, request: web.Request) -> web.Response:
        query = params.book_query(request.query)
        pairs, current = await self._pair(query.book, query.strategy)
        decisions = await self.ledger.decisions(query.book, current.strategy, query.before, query.limit)
        older = decisions[-1].cursor.text() if decisions and len(decisions) == query.limit else None
        return web.json_response({"pairs": [p.as_json() for p in pairs], "strategy": current.strategy,
                                  "bounds": self.bounds.bounds(query.book, current.strategy).as_json(),
                                  "paused": self.bounds.paused(query.book, current.strategy),
                                  "decisions": [d.as_json() for d in decisions], "older": older})

    async def api_series(self, request: web.Request) -> web.Response:
        book, strategy = params.book_id(request.query), params.strategy_name(request.query)
        points = params.series_limit(request.query)
        _, current = await self._pair(book, strategy)
        decisions = await self.ledger.series(book, current.strategy, points)
        return web.json_response({"book": book, "strategy": current.strategy,
                                  "bounds": self.bounds.bounds(book, current.strategy).as_json(),
                                  **series.build(decisions)})

