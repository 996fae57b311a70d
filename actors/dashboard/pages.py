"""The Dashboard's HTML, rendered on the server from the files in ``templates/`` (pure: rows in, text
out). Plain ``string.Template`` placeholders; every value from the database or the request goes
through :func:`esc`, so no peer text is ever markup. Charts and live numbers are drawn by the static
scripts, which read their inputs from ``data-`` attributes and the JSON API (no inline script: the
pages are served with a Content-Security-Policy that forbids it).
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Final

from actors.dashboard.bounds import Bounds
from actors.dashboard.business import AlertRow
from actors.dashboard.params import SCOPES, BookQuery
from actors.dashboard.rows import BooksPage, DecisionRow, PairRow, change_pct, iso, short_time
from transport import files

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
COLUMN_TITLES: Final = MappingProxyType({
    "book": "book", "strategy": "strategy", "price": "our price", "avg": "competitor average", "sold": "sold",
    "hits": "guardrail hits", "decisions": "decisions", "updated": "last decision (UTC)"})
# The books table's columns, in order: a sort key, or a column that does not sort (title, tooltip).
BOOKS_COLUMNS: Final = ("book", "strategy", "price", ("trend", "our newest prices, oldest first, and how much they "
                        "moved"), ("vs competitor", "our price against the competitor's average"), "avg", "sold",
                        ("guardrail", "the guardrails that moved the newest price"), "hits", "decisions", "updated")
SCOPE_TITLES: Final = MappingProxyType({"current": "current catalogue", "earlier": "earlier runs only", "all": "all"})
BADGES: Final = MappingProxyType({"price_war": "price war", "floor_pinned": "at floor",
                                  "stale_competitor": "stale data", "guardrails_most": "guardrails",
                                  "ledger_lag": "ledger behind"})
DASH: Final = "\u2013"  # "no value"
CENT: Final = Decimal("0.01")
MINUS: Final = "\u2212"  # a real minus sign: it reads as one next to a +
SPARK_WIDTH: Final = 96
SPARK_HEIGHT: Final = 22
PAUSED: Final = ('<span class="tag paused" title="held by the config\'s [pause]: not priced until it is lifted '
                 '(the config the Dashboard read at its start)">paused</span>')


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def url(path: str, params: Mapping[str, object]) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return path + ("?" + query if query else "")


def _link(href: str, text: str, current: bool = False) -> str:
    return f'<a href="{esc(href)}"{" aria-current=page" if current else ""}>{esc(text)}</a>'


def _sold(sold: bool) -> str:
    return '<span class="sold">sold</span>' if sold else '<span class="unsold">not sold</span>'


def _guardrail(names: Sequence[str]) -> str:
    return f'<span class="guard">{esc(", ".join(names))}</span>' if names else f'<span class="none">{DASH}</span>'


def _cents(text: str) -> str:
    """A competitor average (exact: as many decimals as the average of five prices takes) shown to the
    cent, as money reads; the exact value is its tooltip."""
    try:
        value = Decimal(text).quantize(CENT, rounding=ROUND_HALF_UP)
    except ArithmeticError:
        return esc(text)
    if str(value) == text:
        return esc(text)
    return f'<span title="{esc(text)} exactly">{esc(value)}</span>'


def _signed(value: Decimal | None, unit: str = "%") -> str:
    """+5.2% / -3.0% (with :data:`MINUS`) / 0.0%, a dash for no value."""
    if value is None:
        return f'<span class="none">{DASH}</span>'
    cls = "up" if value > 0 else "down" if value < 0 else "flat"
    text = f"+{value}" if value > 0 else f"{MINUS}{-value}" if value < 0 else f"{value}"
    return f'<span class="{cls}">{esc(text)}{unit}</span>'


def _bounds_now(bounds: Bounds) -> str:
    """The config's floor and ceiling for the pair now (a decision's own are not kept: docs/limits.md)."""
    if bounds.floor is None and bounds.ceiling is None:
        return ""
    text = " / ".join(esc(v) if v is not None else DASH for v in (bounds.floor, bounds.ceiling))
    return ('<dt title="the guardrails of the config the Dashboard read (at start or the last SIGHUP); '
            f'earlier decisions may have had others">floor / ceiling now</dt><dd>{text}</dd>')


def badges(alerts: Sequence[AlertRow]) -> str:
    """One badge per open alert, its detail as the tooltip."""
    return "".join(f' <span class="badge alert-{esc(a.alert)}" title="{esc(a.title + ": " + a.detail)}">'
                   f'{esc(BADGES.get(a.alert, a.title))}</span>' for a in alerts)  # spaced: read as words


def sparkline(prices: Sequence[str]) -> str:
    """A pair's newest prices as an inline SVG line (drawn only: floats are fine here), oldest first."""
    try:
        values = [float(Decimal(p)) for p in prices]
    except ArithmeticError:
        return ""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (SPARK_WIDTH - 2) / (len(values) - 1)
    points = " ".join(f"{1 + i * step:.1f},{1 + (SPARK_HEIGHT - 2) * (high - v) / span:.1f}"
                      for i, v in enumerate(values))
    return (f'<svg class="spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" viewBox="0 0 {SPARK_WIDTH} '
            f'{SPARK_HEIGHT}" role="img" aria-label="newest {len(values)} prices"><polyline fill="none" '
            f'stroke="#175cd3" stroke-width="1.5" points="{points}"/></svg>')


class Pages:
    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._t = {path.stem: Template(files.read_text(path)) for path in directory.glob("*.html")}

    def _layout(self, title: str, body: str, nav: str = "", head: str = "") -> str:
        return self._t["layout"].substitute(title=esc(title), body=body, head=head,
                                            nav_overview=' aria-current="page"' if nav == "overview" else "",
                                            nav_books=' aria-current="page"' if nav == "books" else "")

    def error(self, status: int, title: str, message: str) -> str:
        body = self._t["error"].substitute(status=status, title=esc(title), message=esc(message))
        return self._layout(f"{status} {title}", body)

    def overview(self, ledger_note: str, report_written: float | None = None) -> str:
        head = ('<link rel="stylesheet" href="/static/uPlot.min.css">'
                '<script src="/static/uPlot.iife.min.js" defer></script><script src="/static/chart_time.js" defer>'
                '</script><script src="/static/overview.js" defer></script>')
        backtest = (f'<a id="backtest-report" href="/backtest">The last backtest report</a> (written '
                    f"{esc(iso(report_written))})." if report_written is not None else
                    "No backtest report yet: <code>python -m actors.algorithm.backtest</code> writes one.")
        body = self._t["overview"].substitute(ledger=esc(ledger_note), backtest=backtest)
        return self._layout("Overview", body, "overview", head)

    # --- books ---------------------------------------------------------------------------------

    def books(self, page: BooksPage) -> str:
        q = page.query
        scope = q.scope if q.scope != "current" else None
        base = {"q": q.search, "size": q.size if q.size != 50 else None, "scope": scope}
        header = []
        for column in BOOKS_COLUMNS:
            if isinstance(column, tuple):
                title, tip = column
                header.append(f'<th title="{esc(tip)}">{esc(title)}</th>')
                continue
            descending = not q.descending if column == q.sort else column in ("hits", "decisions", "updated")
            arrow = (" ▼" if q.descending else " ▲") if column == q.sort else ""
            href = url("/books", {**base, "sort": column, "dir": "desc" if descending else "asc"})
            header.append(f'<th>{_link(href, COLUMN_TITLES[column] + arrow, column == q.sort)}</th>')
        empty = ("no pairs match" if q.search else "no pairs decided by earlier runs only" if q.scope == "earlier"
                 else "no decisions yet")
        body = "\n".join(self._pair_row(page, row) for row in page.rows) or (
            f'<tr><td colspan="{len(BOOKS_COLUMNS)}" class="empty">{esc(empty)}</td></tr>')
        what = SCOPE_TITLES[q.scope] if q.scope != "all" else "all runs"
        shown = (f"{q.offset + 1} to {q.offset + len(page.rows)} of {page.total} (book, strategy) pairs ({what})"
                 if page.rows else f"{page.total} (book, strategy) pairs ({what})")
        state = {**base, "sort": q.sort, "dir": "desc" if q.descending else "asc"}
        scopes = " · ".join(_link(url("/books", {**state, "scope": name if name != "current" else None}),
                                  f"{SCOPE_TITLES[name]} ({page.scopes.get(name, 0)})", name == q.scope)
                            for name in SCOPES)
        content = self._t["books"].substitute(q=esc(q.search), sort=esc(q.sort), dir="desc" if q.descending else "asc",
                                              scope=esc(q.scope), scopes=scopes, count=esc(shown),
                                              header="".join(header), rows=body,
                                              pages=self._pager("/books", state, q.page, page.last_page))
        return self._layout("Books", content, "books")

    def _pair_row(self, page: BooksPage, r: PairRow) -> str:
        href = url("/book", {"id": r.book, "strategy": r.strategy})
        earlier = "" if page.is_current(r) else ' <span class="tag earlier" title="not decided by the newest run: ' \
            'a book no longer in the catalogue, or priced by an earlier run only">earlier run</span>'
        paused = f" {PAUSED}" if r.key in page.paused else ""
        trend = page.trends.get(r.key, ())
        updated = f'<span title="{esc(iso(r.ts))}">{esc(short_time(r.ts))}</span>'
        cells = (f"{_link(href, r.book)}{earlier}{paused}{badges(page.alerts.get(r.key, ()))}",
                 f"{esc(r.strategy)}{badges(page.alerts.get(('', r.strategy), ()))}", esc(r.price),
                 f"{sparkline(trend)} {_signed(change_pct(trend))}", _signed(r.gap_pct), _cents(r.avg_comp_price),
                 _sold(r.sold), _guardrail(r.guardrail), str(r.guardrail_hits), str(r.decisions), updated)
        classes = ("", "", "num", "trend", "num", "num", "nowrap", "", "num", "num", "nowrap")
        attrs = ' class="earlier"' if earlier else ""
        return f"<tr{attrs}>" + "".join(f"<td class={c}>{v}</td>" if c else f"<td>{v}</td>"
                                        for c, v in zip(classes, cells, strict=True)) + "</tr>"

    def _pager(self, path: str, state: Mapping[str, object], page: int, last: int) -> str:
        if last <= 1:
            return ""
        links = []
        for label, target in (("« first", 1), ("« previous", page - 1), ("next »", page + 1),
                              (f"last ({last}) »", last)):
            if 1 <= target <= last and target != page:
                links.append(_link(url(path, {**state, "page": target}), label))
        return f'<span>page {page} of {last}</span> ' + " ".join(links)

    # --- one book ------------------------------------------------------------------------------

    def book(self, query: BookQuery, pairs: Sequence[PairRow], current: PairRow, decisions: Sequence[DecisionRow],
             bounds: Bounds, points: int, alerts: Sequence[AlertRow] = (), *, paused: bool = False) -> str:
        tabs = " ".join(_link(url("/book", {"id": p.book, "strategy": p.strategy}), p.strategy,
                              p.strategy == current.strategy) for p in pairs) if len(pairs) > 1 else ""
        summary = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in (
            ("strategy", esc(current.strategy)), ("our price", esc(current.price)),
            ("vs competitor", _signed(current.gap_pct)), ("competitor average", _cents(current.avg_comp_price)),
            ("sold", _sold(current.sold)), ("guardrail", _guardrail(current.guardrail)),
            ("decisions", str(current.decisions)), ("guardrail hits", str(current.guardrail_hits)),
            ("last decision (UTC)", esc(iso(current.ts))), ("tick", str(current.tick)))) + _bounds_now(bounds)
        rows = "\n".join(self._decision_row(d) for d in decisions) or (
            '<tr><td colspan="11" class="empty">no decisions</td></tr>')
        state = {"id": current.book, "strategy": current.strategy}
        pages = [_link(url("/book", state), "« newest")] if query.before is not None else []
        if decisions and len(decisions) == query.limit:
            pages.append(_link(url("/book", {**state, "before": decisions[-1].cursor.text()}), "older »"))
        content = self._t["book"].substitute(
            book=esc(current.book), strategy=esc(current.strategy), strategies=tabs, summary=summary,
            badges=(f"{PAUSED} " if paused else "") + badges(alerts), alerts=self._alert_list(alerts), points=points,
            csv=esc(url("/book.csv", state)), rows=rows, pages=" ".join(pages))
        head = ('<link rel="stylesheet" href="/static/uPlot.min.css">'
                '<script src="/static/uPlot.iife.min.js" defer></script><script src="/static/chart_time.js" defer>'
                '</script><script src="/static/book.js" defer></script>')
        return self._layout(f"Book {current.book}", content, "books", head)

    @staticmethod
    def _alert_list(alerts: Sequence[AlertRow]) -> str:
        if not alerts:
            return ""
        items = "".join(f'<li class="alert-{esc(a.alert)}"><strong>{esc(a.title)}</strong> since '
                        f'{esc(short_time(a.since))} UTC: {esc(a.detail)}.<div class="note">'
                        f'{esc(a.as_json()["advice"])}</div></li>' for a in alerts)
        return f'<section class="alerts" id="book-alerts"><ul>{items}</ul></section>'

    def _decision_row(self, d: DecisionRow) -> str:
        cells: Iterable[str] = (esc(iso(d.ts)), str(d.tick), esc(" ".join(d.prices)), esc(d.avg_comp_price),
                                str(d.request_id), _sold(d.sold), esc(d.factor or ""), esc(d.price),
                                esc(d.rule_price or ""), esc(", ".join(d.guardrail)), esc(d.previous_price or ""),
                                esc(d.floor or ""), esc(d.ceiling or ""))
        return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
