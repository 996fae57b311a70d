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
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Final

from actors.dashboard.bounds import Bounds
from actors.dashboard.params import SORT_KEYS, BookQuery
from actors.dashboard.rows import BooksPage, DecisionRow, PairRow, iso

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
COLUMN_TITLES: Final = MappingProxyType({
    "book": "book", "strategy": "strategy", "price": "our price", "avg": "avg competitor price", "sold": "last sold",
    "hits": "guardrail hits", "decisions": "decisions", "updated": "last decision (UTC)"})


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def url(path: str, params: Mapping[str, object]) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return path + ("?" + query if query else "")


def _link(href: str, text: str, current: bool = False) -> str:
    return f'<a href="{esc(href)}"{" aria-current=page" if current else ""}>{esc(text)}</a>'


def _sold(sold: bool) -> str:
    return '<span class="sold">sold</span>' if sold else '<span class="unsold">not sold</span>'


class Pages:
    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._t = {path.stem: Template(path.read_text(encoding="utf-8")) for path in directory.glob("*.html")}

    def _layout(self, title: str, body: str, nav: str = "", head: str = "") -> str:
        return self._t["layout"].substitute(title=esc(title), body=body, head=head,
                                            nav_overview=' aria-current="page"' if nav == "overview" else "",
                                            nav_books=' aria-current="page"' if nav == "books" else "")

    def error(self, status: int, title: str, message: str) -> str:
        body = self._t["error"].substitute(status=status, title=esc(title), message=esc(message))
        return self._layout(f"{status} {title}", body)

    def overview(self, ledger_note: str, report_written: float | None = None) -> str:
        head = ('<link rel="stylesheet" href="/static/uPlot.min.css">'
                '<script src="/static/uPlot.iife.min.js" defer></script><script src="/static/overview.js" defer>'
                '</script>')
        backtest = (f'<a id="backtest-report" href="/backtest">The last backtest report</a> (written '
                    f"{esc(iso(report_written))})." if report_written is not None else
                    "No backtest report yet: <code>python -m actors.algorithm.backtest</code> writes one.")
        body = self._t["overview"].substitute(ledger=esc(ledger_note), backtest=backtest)
        return self._layout("Overview", body, "overview", head)

    # --- books ---------------------------------------------------------------------------------

    def books(self, page: BooksPage) -> str:
        q = page.query
        base = {"q": q.search, "size": q.size if q.size != 50 else None}
        header = []
        for key in SORT_KEYS:
            descending = not q.descending if key == q.sort else key in ("hits", "decisions", "updated")
            arrow = (" ▼" if q.descending else " ▲") if key == q.sort else ""
            href = url("/books", {**base, "sort": key, "dir": "desc" if descending else "asc"})
            header.append(f'<th>{_link(href, COLUMN_TITLES[key] + arrow, key == q.sort)}</th>')
        body = "\n".join(self._pair_row(row) for row in page.rows) or (
            '<tr><td colspan="8" class="empty">no pairs match</td></tr>')
        shown = (f"{q.offset + 1} to {q.offset + len(page.rows)} of {page.total} (book, strategy) pairs"
                 if page.rows else f"{page.total} (book, strategy) pairs")
        state = {**base, "sort": q.sort, "dir": "desc" if q.descending else "asc"}
        content = self._t["books"].substitute(q=esc(q.search), sort=esc(q.sort), dir="desc" if q.descending else "asc",
                                              count=esc(shown), header="".join(header), rows=body,
                                              pages=self._pager("/books", state, q.page, page.last_page))
        return self._layout("Books", content, "books")

    def _pair_row(self, r: PairRow) -> str:
        href = url("/book", {"id": r.book, "strategy": r.strategy})
        guard = f' <span class="guard">{esc(", ".join(r.guardrail))}</span>' if r.guardrail else ""
        return (f"<tr><td>{_link(href, r.book)}</td><td>{esc(r.strategy)}</td><td class=num>{esc(r.price)}</td>"
                f"<td class=num>{esc(r.avg_comp_price)}</td><td>{_sold(r.sold)}{guard}</td>"
                f"<td class=num>{r.guardrail_hits}</td><td class=num>{r.decisions}</td><td>{esc(iso(r.ts))}</td></tr>")

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
             bounds: Bounds, points: int) -> str:
        tabs = " ".join(_link(url("/book", {"id": p.book, "strategy": p.strategy}), p.strategy,
                              p.strategy == current.strategy) for p in pairs) if len(pairs) > 1 else ""
        summary = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in (
            ("strategy", esc(current.strategy)), ("our price", esc(current.price)),
            ("avg competitor price", esc(current.avg_comp_price)), ("last sold", _sold(current.sold)),
            ("decisions", str(current.decisions)), ("guardrail hits", str(current.guardrail_hits)),
            ("last decision (UTC)", esc(iso(current.ts))), ("tick", str(current.tick))))
        rows = "\n".join(self._decision_row(d) for d in decisions) or (
            '<tr><td colspan="9" class="empty">no decisions</td></tr>')
        state = {"id": current.book, "strategy": current.strategy}
        pages = [_link(url("/book", state), "« newest")] if query.before is not None else []
        if decisions and len(decisions) == query.limit:
            pages.append(_link(url("/book", {**state, "before": decisions[-1].cursor.text()}), "older »"))
        notes = [f"{name} {value}" for name, value in (("floor", bounds.floor), ("ceiling", bounds.ceiling))
                 if value is not None]
        content = self._t["book"].substitute(
            book=esc(current.book), strategy=esc(current.strategy), strategies=tabs, summary=summary,
            points=points, floor=esc(bounds.floor or ""), ceiling=esc(bounds.ceiling or ""),
            bounds_note=esc(" · dashed: " + ", ".join(notes)) if notes else "",
            csv=esc(url("/book.csv", state)), rows=rows, pages=" ".join(pages))
        head = ('<link rel="stylesheet" href="/static/uPlot.min.css">'
                '<script src="/static/uPlot.iife.min.js" defer></script><script src="/static/book.js" defer></script>')
        return self._layout(f"Book {current.book}", content, "books", head)

    def _decision_row(self, d: DecisionRow) -> str:
        cells: Iterable[str] = (esc(iso(d.ts)), str(d.tick), esc(" ".join(d.prices)), esc(d.avg_comp_price),
                                str(d.request_id), _sold(d.sold), esc(d.price), esc(d.rule_price or ""),
                                esc(", ".join(d.guardrail)))
        return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
