from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.csv_fields import LINE_REASONS, NOT_UTF8, BadRow, split_row
from actors.csv_rows import (
    BAD_ROW_REASONS,
    Columns,
    CsvFormatError,
    PriceCache,
    Row,
    header_columns,
    line_row,
    parse_header,
    parse_price,
    parse_row,
)
from transport.limits import COMPETITOR_PRICE_MAX

COLUMNS = parse_header("timestamp,book_id,price")


def test_header_finds_columns_case_insensitive_trimmed_with_bom_and_crlf() -> None:
    assert parse_header("\ufeff Timestamp , BOOK_ID ,Price\r\n") == Columns(price=2, book_id=1, timestamp=0,
                                                                              count=3)


def test_header_without_book_id_or_timestamp() -> None:
    assert parse_header("price") == Columns(price=0, book_id=None, timestamp=None, count=1)


def test_header_extra_named_columns_are_counted() -> None:
    assert parse_header("seller,price,book_id,currency") == Columns(price=1, book_id=2, timestamp=None,
                                                                      count=4)


def test_header_quoted() -> None:
    assert parse_header('"book_id","price"') == Columns(price=1, book_id=0, timestamp=None, count=2)


@pytest.mark.parametrize("header", ["timestamp,book_id,cost", "", "\ufeff\r\n", "price,book_id,Price"])
def test_bad_header_raises_a_clear_error(header: str) -> None:
    with pytest.raises(CsvFormatError) as info:
        parse_header(header)
    assert isinstance(info.value, ValueError)
    assert "price" in str(info.value) or "header" in str(info.value)


def test_good_row() -> None:
    assert parse_row("2024-01-01T00:00:00Z,B001,12.50\n", COLUMNS, 2) == Row("B001", Decimal("12.50"),
                                                                             "2024-01-01T00:00:00Z")


def test_price_is_decimal_kept_as_written() -> None:
    row = parse_row("t,B1,12.50", COLUMNS, 2)
    assert isinstance(row, Row)
    assert str(row.price) == "12.50"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("t,B1,", "missing_price"),
        ("t,B1,   ", "missing_price"),
        ("t,B1,abc", "non_numeric_price"),
        ("t,B1,1_000", "non_numeric_price"),
        ("t,B1,12.5.1", "non_numeric_price"),
        ("t,B1,-3.20", "negative_price"),
        ("t,B1,0", "zero_price"),
        ("t,B1,0.00", "zero_price"),
        ("t,B1,-0", "zero_price"),
        ("t,B1,NaN", "not_finite_price"),
        ("t,B1,sNaN", "not_finite_price"),
        ("t,B1,inf", "not_finite_price"),
        ("t,B1,-inf", "not_finite_price"),
        ("t,B1,Infinity", "not_finite_price"),
        ("t,B1,1.0000001", "too_many_decimals"),
        ("t,B1,12.1234567", "too_many_decimals"),
        ("t,B1,0.009", "price_too_small"),
        ("t,B1,0.000001", "price_too_small"),
        ("t,B1,1e-3", "price_too_small"),
        ("t,B1,5000000.01", "price_too_large"),
        ("t,B1,1000000001", "price_too_large"),
        ("t,B1,1e10", "price_too_large"),
        ("t,B1,\u0661\u0662\u0663", "non_numeric_price"),
        ("t,B1,\uff12\uff13.\uff15", "non_numeric_price"),
        ("t,B1, 1 2", "non_numeric_price"),
        ('t,B1,"18.00"\rX', "malformed_quotes"),
        ("t,B\x1b1,12.50", "bad_book_id"),
        ("t,B\u00851,12.50", "bad_book_id"),
        ("t," + "B" * 129 + ",12.50", "bad_book_id"),
        ("t,12.50", "wrong_column_count"),
        ("t,B1,12.50,extra", "wrong_column_count"),
        ("t,,12.50", "empty_book_id"),
        ("t,  ,12.50", "empty_book_id"),
    ],
)
def test_bad_rows(line: str, reason: str) -> None:
    bad = parse_row(line, COLUMNS, 7)
    assert isinstance(bad, BadRow)
    assert bad.reason == reason
    assert bad.reason in BAD_ROW_REASONS
    assert bad.line_no == 7
    assert bad.detail


@pytest.mark.parametrize("line", ["", "\n", "\r\n", "   \r\n", "\t"])
def test_blank_lines_are_none(line: str) -> None:
    assert parse_row(line, COLUMNS, 3) is None


def test_crlf_and_spaces_around_fields() -> None:
    assert parse_row("  t , B1 ,  12.50 \r\n", COLUMNS, 2) == Row("B1", Decimal("12.50"), "t")


def test_quoted_fields() -> None:
    assert parse_row('"2024-01-01, noon","B 1","12.50"', COLUMNS, 2) == Row("B 1", Decimal("12.50"),
                                                                           "2024-01-01, noon")


def test_extra_named_columns_are_ignored() -> None:
    columns = parse_header("seller,book_id,price,currency")
    assert parse_row("acme,B1,9.99,EUR", columns, 2) == Row("B1", Decimal("9.99"), None)


def test_file_without_book_id() -> None:
    columns = parse_header("price")
    assert parse_row("9.99", columns, 2) == Row(None, Decimal("9.99"), None)


@given(st.decimals(min_value=Decimal("0.01"), max_value=COMPETITOR_PRICE_MAX, places=2, allow_nan=False,
                   allow_infinity=False))
def test_any_positive_two_place_price_round_trips(price: Decimal) -> None:
    row = parse_row(f"2024-01-01T00:00:00Z,B001,{price}", COLUMNS, 2)
    assert isinstance(row, Row)
    assert row.price == price
    assert str(row.price) == str(price)


def test_exponent_notation_is_kept_as_plain_digits() -> None:
    price = parse_price("1e3")
    assert price == Decimal(1000) and str(price) == "1000"


# --- any byte sequence is a row or a counted bad row, never an exception (issue 9) ---------------

HEADERS = [parse_header(h) for h in ("timestamp,book_id,price", "price", "book_id,price", '"price","book_id",x')]


def _check_line(line: str) -> None:
    for columns in HEADERS:
        row = parse_row(line, columns, 7)
        assert row is None or isinstance(row, Row | BadRow)
        if isinstance(row, BadRow):
            assert row.reason in BAD_ROW_REASONS and row.line_no == 7
        fields = split_row(line, columns.count, 7)
        assert fields is None or isinstance(fields, BadRow) or len(fields) == columns.count


@given(st.binary(max_size=300))
def test_any_bytes_parse_to_a_row_or_a_bad_row(raw: bytes) -> None:
    for line in raw.split(b"\n"):
        _check_line(line.decode("utf-8", "replace"))


@given(st.text(alphabet=st.sampled_from('",\r\t\x00\x0b\x1a \ufeff\u2028\u0661\uff12.-+eE01Bnaif'), max_size=60))
def test_csv_metacharacters_parse_to_a_row_or_a_bad_row(line: str) -> None:
    _check_line(line)


@given(st.text(max_size=200))
def test_any_header_is_columns_or_a_format_error(line: str) -> None:
    try:
        columns = parse_header(line)
    except CsvFormatError:
        return
    assert 0 <= columns.price < columns.count


@given(st.text(alphabet=st.sampled_from("0123456789.-+eEinfINFnaN_ \u0661"), max_size=40))
def test_the_price_cache_answers_as_the_parser(raw: str) -> None:
    cache = PriceCache(size=4)
    assert cache.parse(raw) == parse_price(raw)
    assert cache.parse(raw) == parse_price(raw)  # from the cache


def test_a_quoted_field_followed_by_a_bare_carriage_return_is_a_bad_row() -> None:
    assert parse_row('t,B001,"18.00"\rX', COLUMNS, 3) == BadRow(3, "malformed_quotes", "line 't,B001,\"18.00\"\\rX'")


def test_every_reason_a_line_is_refused_whole_is_a_price_csv_reason_and_a_counter() -> None:
    assert set(LINE_REASONS) <= set(BAD_ROW_REASONS) and len(set(BAD_ROW_REASONS)) == len(BAD_ROW_REASONS)


def test_a_header_line_in_bytes_is_its_columns_or_none_when_blank() -> None:
    assert header_columns(b"\xef\xbb\xbftimestamp,book_id,price\r") == COLUMNS
    assert header_columns(b"  \r") is None
    with pytest.raises(CsvFormatError, match="no 'price' column"):
        header_columns(b"book,\xff")  # not UTF-8: replaced, so the header's own check speaks


def test_a_data_line_in_bytes_is_a_row_a_bad_row_or_none() -> None:
    assert line_row(b"t,B1,12.50\r", COLUMNS, 2) == Row("B1", Decimal("12.50"), "t")
    assert line_row(b"   ", COLUMNS, 3) is None
    bad = line_row(b"t,B\xff1,12.50", COLUMNS, 4)
    assert isinstance(bad, BadRow) and bad.reason == NOT_UTF8 and bad.line_no == 4  # never a U+FFFD book


USUAL_AND_ODD = ["t,B1,12.50", " t , B1 , 12.50 \r\n", 't,"B1",12.50', "t,B1,12.50,", "t,,12.50", "t, ,12.50",
                 "t,B\x1b1,12.50", "t," + "B" * 129 + ",12.50", "t," + "B" * 128 + ",12.50", "t,B1,0.009", "t,B1,",
                 "t,B1,1e3", "t,B1,12.1234567", ",B1,12.50", "t,B1,12.50\x00", "\ufefft,B1,12.50", "t,B1"]


@pytest.mark.parametrize("columns", [COLUMNS, parse_header("timestamp,price"), parse_header("price,book_id")])
@given(st.one_of(st.sampled_from(USUAL_AND_ODD),
                 st.text(alphabet=st.sampled_from('",\r\t\x00\x1b \ufeff.-eE0125Bnaif'), max_size=30)))
def test_a_row_read_with_a_warm_price_cache_is_the_row_read_without(columns: Columns, line: str) -> None:
    """parse_row's one-step path (a price the cache knows) reads every line as the careful path does."""
    cache = PriceCache()
    first = parse_row(line, columns, 7, cache)
    assert parse_row(line, columns, 7, cache) == first == parse_row(line, columns, 7)
    assert type(parse_row(line, columns, 7, cache)) is type(first)  # a Row made by position is still a Row


def test_the_one_step_path_makes_a_row_with_its_fields_by_name() -> None:
    cache = PriceCache()
    parse_row("t,B1,12.50", COLUMNS, 2, cache)  # the price is now known: the next line takes the one step
    row = parse_row("u,B2,12.50", COLUMNS, 3, cache)
    assert type(row) is Row
    assert (row.book_id, row.price, row.timestamp) == ("B2", Decimal("12.50"), "u")
