"""The start of a data file, checked before anything starts (issue 21 item 4): what can never give a
decision is refused (replay) or waited for (follow) with one line naming the file, the line and why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.first_rows import SCAN_MAX_BYTES, Finding, FirstRows, check_data_file

BOOKS = ["B001", "B002", "B003"]


def check(tmp_path: Path, content: str | bytes, books: list[str] | None = BOOKS, **kw: int) -> tuple[Finding, str]:
    path = tmp_path / "data.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    found = check_data_file(str(path), books, **kw)
    return found.finding, found.problem("--data-file", "data.csv")


def test_a_semicolon_file_is_refused_at_its_header(tmp_path: Path) -> None:
    finding, why = check(tmp_path, "timestamp;book_id;price\n2024-01-01;B001;18.02\n")
    assert finding is Finding.BAD_HEADER
    assert why == ("--data-file data.csv: line 1: unusable header: the header has no 'price' column (got "
                   "['timestamp;book_id;price']); expected e.g. 'timestamp,book_id,price' (its fields are separated "
                   "by semicolons: the file must be comma-separated)")


def test_a_file_without_a_header_is_refused_quoting_its_first_line_as_written(tmp_path: Path) -> None:
    # The trial of issue 21 saw "got ['2024-01-01t00:00:00z', 'b001', '17.93']": lowercased, unexplained.
    finding, why = check(tmp_path, "2024-01-01T00:00:00Z,B001,17.93\n2024-01-01T00:00:05Z,B001,18.02\n")
    assert finding is Finding.BAD_HEADER
    assert why == ("--data-file data.csv: line 1: unusable header: the header has no 'price' column (got "
                   "['2024-01-01T00:00:00Z', 'B001', '17.93']); expected e.g. 'timestamp,book_id,price' (it looks "
                   "like a data row: the file must start with a header line naming the columns)")
    assert check(tmp_path, "Time,ISBN,Cost\nx,B001,1.00\n")[1].endswith(
        "(got ['Time', 'ISBN', 'Cost']); expected e.g. 'timestamp,book_id,price'")  # names, no hint


def test_comma_decimals_are_refused_naming_the_first_bad_line(tmp_path: Path) -> None:
    finding, why = check(tmp_path, "timestamp,book_id,price\n\n2024-01-01,B001,18,02\n2024-01-01,B002,19,50\n")
    assert finding is Finding.NO_VALID_ROW
    assert why == ("--data-file data.csv: no valid row for any of the 3 book(s) priced; first bad line 3: "
                   "wrong_column_count: expected 3 fields as in the header, got 4 (a decimal comma? prices are "
                   "written with a point, e.g. 18.02)")


@pytest.mark.parametrize(("content", "finding", "why"), [
    ("", Finding.NO_HEADER, "no header row: the file is empty"),
    ("\n\n  \n", Finding.NO_HEADER, "no header row: the file is empty"),
    ("timestamp,book_id,price\n", Finding.NO_VALID_ROW, "a header and no data row"),
    ("book_id,price\nX1,1.00\nX2,2.00\n", Finding.NO_VALID_ROW,
     "no valid row for any of the 3 book(s) priced: its rows are for other books (e.g. X1)"),
    ("book_id,price,price\nB001,1,2\n", Finding.BAD_HEADER, "line 1: unusable header: the header names column "),
    (b"book_id,pr\xffice\nB001,1\n", Finding.BAD_HEADER, "unusable header: the header has no 'price' column"),
    ("book_id,price\nB001,-1\nB002,abc\n", Finding.NO_VALID_ROW,
     "no valid row for any of the 3 book(s) priced; first bad line 2: negative_price: price '-1'"),
])
def test_files_that_can_give_no_decision(tmp_path: Path, content: str | bytes, finding: Finding, why: str) -> None:
    got, message = check(tmp_path, content)
    assert got is finding and got in (Finding.NO_HEADER, Finding.BAD_HEADER, Finding.NO_VALID_ROW)
    assert message.startswith("--data-file data.csv: ") and why in message, message
    assert "\n" not in message


def test_a_usable_file_says_which_books_have_only_bad_rows_or_none(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text('timestamp,book_id,price\nt0,B001,18.02\nt0,B002,"19,50"\nt1,B002,19.60x\nt1,B001,18.10\n')
    found = check_data_file(str(path), BOOKS)
    assert found.finding is Finding.USABLE and not found.refused and found.complete
    assert found.warnings("--data-file", "data.csv") == [
        "--data-file data.csv: 1 book(s) priced have only bad rows in the file: B002 (line 3: non_numeric_price); "
        "the first: price '19,50' (a decimal comma? prices are written with a point, e.g. 18.02)",
        "--data-file data.csv: 1 book(s) priced have no row in the file: B003"]


def test_a_later_valid_row_clears_a_books_bad_start() -> None:
    rows = FirstRows(["B1"])
    for number, line in enumerate(["book_id,price", "B1,abc", "B1,1.00"], start=1):
        rows.feed(number, line)
    assert rows.done
    found = rows.verdict(complete=False, bytes_read=30)
    assert found.finding is Finding.USABLE and found.bad_only_count == 0 and found.unseen_count == 0


def test_a_file_without_book_ids_serves_every_book(tmp_path: Path) -> None:
    assert check(tmp_path, "timestamp,price\nt0,1.00\n")[0] is Finding.USABLE
    assert check(tmp_path, "price\nabc\n")[0] is Finding.NO_VALID_ROW


def test_the_scan_stops_at_the_first_valid_row_of_each_book(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("book_id,price\n")
        f.writelines(f"B00{1 + i % 3},{i % 90 + 1}.00\n" for i in range(200_000))
    found = check_data_file(str(path), BOOKS)
    assert found.finding is Finding.USABLE and not found.complete
    assert found.bytes_read < 100  # the header and three rows
    assert check_data_file(str(path), None).bytes_read < 50


def test_the_scan_is_bounded_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "others.csv"
    with path.open("w") as f:
        f.write("book_id,price\n")
        f.writelines(f"X{i},1.00\n" for i in range(20_000))
        f.write("B001,1.00\n")
    found = check_data_file(str(path), BOOKS, max_bytes=64 * 1024)
    assert found.finding is Finding.NOT_YET and not found.refused and not found.complete
    assert 64 * 1024 <= found.bytes_read < 64 * 1024 + 100
    warnings, read = found.warnings("--data-file", "others.csv"), f"{found.bytes_read:,}"
    assert warnings[0] == (f"--data-file others.csv: 3 book(s) priced have no row in the first {read} bytes (not read "
                           "further at start): B001, B002, B003")
    assert f"no valid row for any of the 3 book(s) priced in the first {read} bytes, only rows of other books " \
           "(e.g. X0): not read further at start, the DataManager reads on" in warnings[1]
    # Bad rows only, for that long: refused (nothing valid at all).
    path.write_text("book_id,price\n" + "B001,18,02\n" * 10_000)
    found = check_data_file(str(path), BOOKS, max_bytes=64 * 1024)
    assert found.finding is Finding.NO_VALID_ROW and found.refused
    assert found.why.startswith("no valid row at all in the first 65,")
    assert SCAN_MAX_BYTES == 8 * 1024 * 1024


def test_not_a_regular_file_is_an_error(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        check_data_file(str(fifo), BOOKS)
