"""Query parameters: what each route accepts, and that anything else is a clear 4xx, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.dashboard import params
from actors.dashboard.params import BadRequest, BooksQuery


def test_books_defaults_and_values() -> None:
    assert params.books_query({}) == BooksQuery()
    query = params.books_query({"q": " B00 ", "sort": "price", "dir": "desc", "page": "3", "size": "20"})
    assert query == BooksQuery("B00", "price", True, 3, 20)
    assert query.offset == 40


@pytest.mark.parametrize(("values", "reason"), [
    ({"page": "abc"}, "bad_page"), ({"page": "0"}, "bad_page"), ({"page": "-1"}, "bad_page"),
    ({"page": "+2"}, "bad_page"), ({"page": " 2"}, "bad_page"), ({"page": "1_000"}, "bad_page"),
    ({"page": "٣"}, "bad_page"), ({"page": "99999999999999999999999"}, "bad_page"),
    ({"page": str(params.PAGE_MAX + 1)}, "bad_page"), ({"size": "501"}, "bad_size"),
    ({"sort": "price; DROP TABLE pairs"}, "bad_sort"), ({"dir": "sideways"}, "bad_dir"),
    ({"q": "x" * 129}, "bad_q"), ({"q": "a\nb"}, "bad_q"),
])
def test_malformed_books_parameters_are_named(values: dict[str, str], reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        params.books_query(values)
    assert caught.value.reason == reason and caught.value.status == 400
    assert next(iter(values)) in caught.value.message


@pytest.mark.parametrize(("values", "reason"), [
    ({}, "missing_book"), ({"id": " B1"}, "bad_book"), ({"id": "B\x001"}, "bad_book"), ({"id": "x" * 129}, "bad_book"),
    ({"id": "B1", "before": "x"}, "bad_before"), ({"id": "B1", "limit": "0"}, "bad_limit"),
    ({"id": "B1", "strategy": "s" * 65}, "bad_strategy"),
])
def test_malformed_book_parameters_are_named(values: dict[str, str], reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        params.book_query(values)
    assert caught.value.reason == reason


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False),
       st.floats(min_value=0, allow_nan=False, allow_infinity=False), st.integers(0, params.TICK_MAX))
def test_a_cursor_reads_back_exactly_what_the_older_link_wrote(ts: float, run: float, tick: int) -> None:
    place = params.Cursor(ts, run, tick)
    assert params.book_query({"id": "B1", "before": place.text()}).before == place


@pytest.mark.parametrize("text", ["17", "1.5,2", "1,2,-3", "nan,0,1", "inf,0,1", "1,2,3,4", "-1,0,1", " 1,0,1",
                                  "1,0,99999999999999999999", "1e999,0,1"])
def test_a_malformed_cursor_is_refused(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        params.book_query({"id": "B1", "before": text})
    assert caught.value.reason == "bad_before" and "ts,run,tick" in caught.value.message


def test_a_page_past_the_end_is_a_404_saying_where_the_end_is() -> None:
    params.check_page(BooksQuery(page=1), 0)  # page 1 of an empty table exists
    params.check_page(BooksQuery(page=2, size=50), 51)
    with pytest.raises(BadRequest) as caught:
        params.check_page(BooksQuery(page=3, size=50), 100)
    assert caught.value.status == 404 and "last page (2)" in caught.value.message


@given(st.dictionaries(st.sampled_from(["q", "sort", "dir", "page", "size", "id", "strategy", "before", "limit",
                                        "points", "other"]), st.text(max_size=30)))
def test_any_parameters_parse_or_are_refused_cleanly(values: dict[str, str]) -> None:
    for parse in (params.books_query, params.book_query, params.series_limit):
        try:
            parse(values)
        except BadRequest as exc:
            assert 400 <= exc.status < 500 and exc.message and exc.reason
