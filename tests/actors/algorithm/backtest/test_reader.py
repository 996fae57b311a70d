"""The backtest's CSV reader gives exactly the rows the DataManager's row parser gives, in file order,
and counts every bad row by the same reason: on tidy files (the fast path), on files with every
tolerated oddity, and on fuzzed bytes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.algorithm.backtest.reader import ALL_BOOKS, LINE_MAX, BookIndex, PriceFile
from actors.csv_fields import BadRow
from actors.csv_rows import CsvFormatError, header_columns, line_row


def expected(data: bytes) -> tuple[list[tuple[str, Decimal]], dict[str, int]]:
    """What the DataManager reads from ``data``: its valid rows in order, and its bad-row counts."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    rows: list[tuple[str, Decimal]] = []
    bad: dict[str, int] = {}
    columns = None
    for number, raw in enumerate(lines, start=1):
        if len(raw) >= LINE_MAX:
            bad["line_too_long"] = bad.get("line_too_long", 0) + 1
            continue
        if columns is None:
            columns = header_columns(raw)
            continue
        row = line_row(raw, columns, number)
        if isinstance(row, BadRow):
            bad[row.reason] = bad.get(row.reason, 0) + 1
        elif row is not None:
            rows.append((ALL_BOOKS if row.book_id is None else row.book_id, row.price))
    return rows, bad


def read(path: Path, block_bytes: int = 1 << 20) -> tuple[list[tuple[str, Decimal]], dict[str, int]]:
    books = BookIndex()
    reader = PriceFile(str(path), books, block_bytes)
    rows = []
    for block in reader.blocks():
        rows += [(books.ids[b], Decimal(int(p)).scaleb(-6)) for b, p in zip(block.book, block.price, strict=True)]
    bad = {k.removeprefix("bad_rows_"): v for k, v in reader.counters.items() if k.startswith("bad_rows_")}
    assert reader.counters["bad_rows"] == sum(bad.values())
    assert reader.counters["rows_read"] == len(rows)
    return rows, bad


def check(path: Path, data: bytes, block_bytes: int = 1 << 20) -> None:
    path.write_bytes(data)
    assert read(path, block_bytes) == expected(data)


ODD_LINES = [
    b"2026-01-01,B001,18.02", b"2026-01-01,B002,19", b"t,B003,0018.500000", b"t,  B004 ,12.5", b"t,B005, 12.5 ",
    b'"t","B006","13.25"', b"t,B007,12.5\r", b"", b"   ", b"t,B008", b"t,B009,1.2.3", b"t,B010,-1", b"t,B011,0",
    b"t,B012,0.001", b"t,B013,12.1234567", b"t,B014,5000000.01", b"t,B015,5000000", b"t,B016,nan", b"t,,12",
    b"t,B\x01,12", b"t,B017,1e3", b"t,B018,12.", b"t,\xc3\xa9,12.00", b"t,\xff,12", b't,"B019,12', b"t,B001,17.5",
    b"t,B 020,3.3", b"t,B021,\xd9\xa1", b"t,B022,.5", b"t,B023,12345678", b"t,B024,1234567.123456", b"t,B001,17.5,",
]


def test_every_odd_line_is_read_as_the_datamanager_reads_it(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbftimestamp, Book_ID ,price\r\n" + b"\n".join(ODD_LINES) + b"\n"
    check(tmp_path / "odd.csv", data)
    rows, bad = read(tmp_path / "odd.csv")
    assert ("B001", Decimal("18.02")) in rows and ("é", Decimal("12.00")) in rows and bad


def test_tidy_lines_with_empty_fields(tmp_path: Path) -> None:
    # Every line with its commas (the fast path's shortcut), some fields empty, one line without a timestamp.
    check(tmp_path / "tidy.csv", b"timestamp,book_id,price\n,B001,1.50\nt,B002,2\n,,3\nt,B001,\n")
    rows, bad = read(tmp_path / "tidy.csv")
    assert rows == [("B001", Decimal("1.50")), ("B002", Decimal(2))] and bad == {"empty_book_id": 1,
                                                                                "missing_price": 1}


@pytest.mark.parametrize("block_bytes", [1024, 4096, 1 << 20])
def test_blocks_of_any_size_give_the_same_rows(tmp_path: Path, block_bytes: int) -> None:
    lines = [f"2026-01-01T00:00:{i % 60:02d}Z,B{i % 7:03d},{10 + i % 997 / 100:.2f}".encode() for i in range(3000)]
    check(tmp_path / "big.csv", b"timestamp,book_id,price\n" + b"\n".join(lines), block_bytes)


def test_lines_too_long_are_bad_rows_wherever_they_fall(tmp_path: Path) -> None:
    long_line = b"t,B001," + b"9" * LINE_MAX
    data = (b"\n" + long_line + b"\ntimestamp,book_id,price\nt,B001,1.00\n" + long_line + b"\nt,B002,2.00\n"
            + b"x" * (LINE_MAX - 1) + b"\nt,B003,3.00\n" + long_line)
    for block_bytes in (1024, LINE_MAX // 2, 4 << 20):
        check(tmp_path / "long.csv", data, block_bytes)


def test_a_file_without_book_column_serves_one_series(tmp_path: Path) -> None:
    check(tmp_path / "one.csv", b"price\n1.5\n2.5\n\n3\n")
    assert read(tmp_path / "one.csv")[0] == [(ALL_BOOKS, Decimal("1.5")), (ALL_BOOKS, Decimal("2.5")),
                                            (ALL_BOOKS, Decimal(3))]


def test_books_past_the_limit_are_counted(tmp_path: Path) -> None:
    (tmp_path / "many.csv").write_text("book_id,price\nA,1\nB,2\nC,3\nA,4\nC,5\n")
    reader = PriceFile(str(tmp_path / "many.csv"), BookIndex(max_books=2))
    rows = [(reader.books.ids[b], int(p)) for block in reader.blocks() for b, p in zip(block.book, block.price,
                                                                                     strict=True)]
    assert rows == [("A", 1_000_000), ("B", 2_000_000), ("A", 4_000_000)]
    assert reader.counters["books_over_limit"] == 2


def test_a_bad_header_refuses_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("timestamp,book_id,cost\nt,B001,1\n")
    with pytest.raises(CsvFormatError, match="no 'price' column"):
        list(PriceFile(str(tmp_path / "bad.csv")).blocks())


line_bytes = st.lists(st.sampled_from([b"B001", b"B002", b",", b"1", b"2.5", b".", b"0", b" ", b'"', b"\r",
                                       b"\xff", b"\xc3\xa9", b"t", b"9999999", b"\x00", b"-"]), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line_bytes.map(b"".join), max_size=40), st.sampled_from([1024, 1 << 20]))
def test_fuzzed_lines(tmp_path: Path, lines: list[bytes], block_bytes: int) -> None:
    check(tmp_path / "fuzz.csv", b"timestamp,book_id,price\n" + b"\n".join(lines), block_bytes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_after_the_header(tmp_path: Path, data: bytes) -> None:
    check(tmp_path / "bytes.csv", b"book_id,price\n" + data, 1024)
