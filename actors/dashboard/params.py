"""The Dashboard's query parameters, parsed and validated (pure: no I/O).

Every page and API route takes its parameters through here, so a malformed one is refused the same
way everywhere: :class:`BadRequest` names the parameter and what it accepts, and carries a *reason*
the server counts by.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from transport import limits

PAGE_SIZE_DEFAULT: Final = 50
PAGE_SIZE_MAX: Final = 500
PAGE_MAX: Final = 1_000_000  # larger page numbers are malformed; smaller ones past the end are "not found"
SEARCH_MAX_LEN: Final = 128
DECISIONS_DEFAULT: Final = 100
DECISIONS_MAX: Final = 1000
SERIES_DEFAULT: Final = 2000
SERIES_MAX: Final = 20_000  # points in one chart: enough for a day of 5 s ticks
TICK_MAX: Final = 2**63 - 1
# Sort keys of the books table, in the order of its columns.
SORT_KEYS: Final = ("book", "strategy", "price", "avg", "sold", "hits", "decisions", "updated")
# Which pairs the books table lists: the current catalogue (decided in the newest run), those only
# earlier runs decided, or all.
SCOPES: Final = ("current", "earlier", "all")
_DIGITS: Final = re.compile(r"[0-9]{1,19}")
# A decision's place in a pair's newest-first order: "ts,run,tick" (floats as Python writes them, so
# they read back exactly).
_NUMBER: Final = r"[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][-+]?[0-9]{1,3})?"
_CURSOR: Final = re.compile(rf"({_NUMBER}),({_NUMBER}),([0-9]{{1,19}})")


class Cursor(NamedTuple):
    """Where a page of a pair's decisions stops: the last decision shown, by (ts, run, tick), the order
    the Dashboard lists them in (tick numbers restart with every launcher run: a tick alone is no
    place). The next, older page starts below it."""

    ts: float
    run: float
    tick: int

    def text(self) -> str:
        return f"{self.ts!r},{self.run!r},{self.tick}"


class BadRequest(ValueError):
    """A request the Dashboard refuses: ``status`` (4xx), a ``reason`` to count, a message to show."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class BooksQuery:
    search: str = ""
    sort: str = "book"
    descending: bool = False
    page: int = 1
    size: int = PAGE_SIZE_DEFAULT
    scope: str = "current"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@dataclass(frozen=True, slots=True)
class BookQuery:
    book: str
    strategy: str | None = None  # None: the book's first strategy
    before: Cursor | None = None  # decisions older than this one (the next, older page)
    limit: int = DECISIONS_DEFAULT


def _integer(params: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    # ASCII digits only: int() would also take "+5", " 5", "1_000" and other scripts' digits.
    if not _DIGITS.fullmatch(text) or not minimum <= int(text) <= maximum:
        raise BadRequest(f"bad_{name}", f"{name} must be a whole number within {minimum}..{maximum}, "
                         f"got {text[:40]!r}")
    return int(text)


def _text(params: Mapping[str, str], name: str, max_len: int) -> str:
    text = params.get(name, "")
    if len(text) > max_len or not text.isprintable():
        raise BadRequest(f"bad_{name}", f"{name} must be at most {max_len} printable characters")
    return text


def book_id(params: Mapping[str, str], name: str = "id") -> str:
    book = params.get(name, "")
    if not book:
        raise BadRequest("missing_book", f"{name}: which book? (e.g. ?{name}=B001)")
    if not limits.is_valid_book_id(book):
        raise BadRequest("bad_book", f"{name} must be a book id: 1..{limits.BOOK_ID_MAX_LEN} printable "
                         "characters without surrounding spaces")
    return book


def strategy_name(params: Mapping[str, str]) -> str | None:
    name = _text(params, "strategy", limits.STRATEGY_NAME_MAX_LEN)
    return name or None


def books_query(params: Mapping[str, str]) -> BooksQuery:
    """``?q=&sort=&dir=&page=&size=&scope=`` of the books table."""
    sort = params.get("sort") or "book"
    if sort not in SORT_KEYS:
        raise BadRequest("bad_sort", f"sort must be one of {', '.join(SORT_KEYS)}, got {sort[:40]!r}")
    direction = params.get("dir") or "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest("bad_dir", f"dir must be asc or desc, got {direction[:40]!r}")
    scope = params.get("scope") or "current"
    if scope not in SCOPES:
        raise BadRequest("bad_scope", f"scope must be one of {', '.join(SCOPES)}, got {scope[:40]!r}")
    return BooksQuery(search=_text(params, "q", SEARCH_MAX_LEN).strip(), sort=sort, descending=direction == "desc",
                      page=_integer(params, "page", 1, 1, PAGE_MAX),
                      size=_integer(params, "size", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX), scope=scope)


def cursor(params: Mapping[str, str], name: str = "before") -> Cursor | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    match = _CURSOR.fullmatch(text)
    if match is not None:
        ts, run, tick = float(match[1]), float(match[2]), int(match[3])
        if math.isfinite(ts) and math.isfinite(run) and tick <= TICK_MAX:
            return Cursor(ts, run, tick)
    raise BadRequest(f"bad_{name}", f"{name} must be a place in the decisions, ts,run,tick (as the 'older' link "
                     f"gives it), got {text[:60]!r}")


def book_query(params: Mapping[str, str]) -> BookQuery:
    """``?id=&strategy=&before=&limit=`` of one book's page and its decisions."""
    return BookQuery(book_id(params), strategy_name(params), cursor(params),
                     _integer(params, "limit", DECISIONS_DEFAULT, 1, DECISIONS_MAX))


def series_limit(params: Mapping[str, str]) -> int:
    return _integer(params, "points", SERIES_DEFAULT, 1, SERIES_MAX)


def last_page(total: int, size: int) -> int:
    """The number of the last page (1 for an empty table: page 1 always exists)."""
    return max(1, -(-total // size))


def check_page(query: BooksQuery, total: int) -> None:
    """A page past the end is a 404 that says where the end is."""
    last = last_page(total, query.size)
    if query.page > last:
        raise BadRequest("page_past_end", f"page {query.page} is past the last page ({last}) of {total} "
                         f"row(s) at {query.size} per page", status=404)
