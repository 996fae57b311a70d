from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.csv_fields import BadRow
from actors.pricing.config.catalog import (
    CatalogFormatError,
    CatalogLoader,
    parse_catalog_header,
    parse_catalog_row,
)
from actors.pricing.guardrails import Guardrails


def test_header_columns_in_any_order_extra_ignored() -> None:
    columns = parse_catalog_header("\ufeff Ending ,ceiling,notes,book_id,FLOOR")
    assert columns.book_id == 3 and columns.count == 5
    assert dict(columns.fields) == {"floor": 4, "ceiling": 1, "ending": 0}


@pytest.mark.parametrize(("line", "expected"), [
    ("B1,1.5,2,5,0.99", ("B1", Guardrails(Decimal("1.50"), Decimal("2.00"), Decimal(5), Decimal("0.99")))),
    (' "B 1" , , 3 ,, ', ("B 1", Guardrails(ceiling=Decimal("3.00")))),
    ("   ", None),
    ("B1,1,2", "wrong_column_count"),
    (",1,2,,", "empty_book_id"),
    ("B\x001,1,2,,", "bad_book_id"),
    ("B1,x,2,,", "bad_floor"),
    ("B1,1,0,,", "bad_ceiling"),
    ("B1,1,2,0,", "bad_max_step_pct"),
    ("B1,1,2,,1.5", "bad_ending"),
    ('B1,"1"\rX,2,,', "malformed_quotes"),
])
def test_rows(line: str, expected: object) -> None:
    columns = parse_catalog_header("book_id,floor,ceiling,max_step_pct,ending")
    row = parse_catalog_row(line, columns, 7)
    if isinstance(expected, str):
        assert isinstance(row, BadRow) and row.reason == expected and row.line_no == 7
    else:
        assert row == expected


def test_equal_guardrails_are_shared() -> None:
    loader = CatalogLoader("c.csv", {"A", "B"}, Guardrails())
    for number, line in enumerate(["book_id,floor,ceiling", "A,1,2", "B,1.00,2.00"], start=1):
        loader.feed(number, line)
    catalog = loader.finish()
    assert catalog.overrides["A"] is catalog.overrides["B"]
    assert catalog.counts == {"rows": 2, "bad_rows": 0, "unknown_books": 0} and catalog.warnings == ()


@given(st.lists(st.text(max_size=40) | st.sampled_from(["B1,1,2,3,0.5", "B2,,9,,", "B1,3,1,,", ",,,,", '"']),
                max_size=30))
def test_any_lines_give_bad_rows_not_exceptions(lines: list[str]) -> None:
    loader = CatalogLoader("c.csv", {"B1", "B2"}, Guardrails(ceiling=Decimal(5)))
    loader.feed(1, "book_id,floor,ceiling,max_step_pct,ending")
    for number, line in enumerate(lines, start=2):
        loader.feed(number, line)
    catalog = loader.finish()
    assert set(catalog.overrides) <= {"B1", "B2"}
    for guardrails in catalog.overrides.values():
        assert guardrails.problem() is None
    assert catalog.counts["rows"] + catalog.counts["bad_rows"] + catalog.counts["unknown_books"] <= len(lines)
    assert len(catalog.warnings) <= 12


@given(st.text(max_size=60))
def test_any_header_is_columns_or_a_format_error(line: str) -> None:
    try:
        parse_catalog_header(line)
    except CatalogFormatError as exc:
        assert str(exc)
