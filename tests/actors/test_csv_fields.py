"""Splitting a CSV line into its fields: the part the price CSV and the guardrail catalog share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.csv_fields import (
    MALFORMED_QUOTES,
    NOT_UTF8,
    WRONG_COLUMN_COUNT,
    BadRow,
    not_utf8,
    split_fields,
    split_row,
)


@pytest.mark.parametrize(("line", "fields"), [
    ("a,b,c", ["a", "b", "c"]),
    (" a , b ,c\r\n", ["a ", " b ", "c"]),  # the line is trimmed; the cells are stripped by their reader
    ('"a,1","b ""q""",c', ["a,1", 'b "q"', "c"]),
    (",,", ["", "", ""]),
])
def test_a_line_is_split_into_its_fields(line: str, fields: list[str]) -> None:
    assert split_row(line, 3, 2) == fields


@pytest.mark.parametrize("line", ["", "\n", "\r\n", "   \r\n", "\t"])
def test_a_blank_line_is_none(line: str) -> None:
    assert split_row(line, 3, 2) is None


def test_a_line_with_too_few_or_too_many_fields_is_refused_with_the_count() -> None:
    assert split_row("a,b", 3, 5) == BadRow(5, WRONG_COLUMN_COUNT, "expected 3 fields as in the header, got 2")
    bad = split_row("a,b,c,d", 3, 6)
    assert isinstance(bad, BadRow) and bad.reason == WRONG_COLUMN_COUNT and bad.line_no == 6


def test_malformed_quotes_are_refused_with_an_escaped_excerpt() -> None:
    assert split_fields('t,B001,"18.00"\rX') is None
    assert split_row('t,B001,"18.00"\rX', 3, 3) == BadRow(3, MALFORMED_QUOTES, "line 't,B001,\"18.00\"\\rX'")


@given(st.text(alphabet=st.sampled_from('",\r\n\t\x00 ab'), max_size=40), st.integers(1, 4))
def test_any_line_is_fields_of_the_header_count_a_bad_row_or_blank(line: str, count: int) -> None:
    fields = split_row(line, count, 9)
    if isinstance(fields, BadRow):
        assert fields.reason in (MALFORMED_QUOTES, WRONG_COLUMN_COUNT) and fields.line_no == 9
    else:
        assert fields is None or len(fields) == count


@given(st.binary(max_size=60))
def test_a_line_is_utf8_text_or_a_not_utf8_bad_row(raw: bytes) -> None:
    """How the scanner and the catalog reader refuse bytes (never a U+FFFD standing in for them)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = not_utf8(4, exc)
        assert bad.reason == NOT_UTF8 and bad.line_no == 4
        assert f"byte {exc.start} " in bad.detail
