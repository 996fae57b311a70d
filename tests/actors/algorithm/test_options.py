import os
from pathlib import Path

import pytest

from actors.algorithm.clients.api import HttpPolicy
from actors.algorithm.clients.data_manager import RequestPolicy
from actors.algorithm.config import ConfigError
from actors.algorithm.options import PricingOptions, book_ids
from transport import limits


def test_books_from_the_command_line() -> None:
    assert book_ids(PricingOptions(books="B1, B2,,B1")) == ["B1", "B2"]
    with pytest.raises(ConfigError, match=r"--books: 'B\\x01' is not a valid book id"):
        book_ids(PricingOptions(books="B1,B\x01"))


def test_a_books_file_is_read_as_bounded_text(tmp_path: Path) -> None:
    path = tmp_path / "books.txt"
    path.write_text("# ids\nX1\r\n\n  X2  \nX1\n")
    assert book_ids(PricingOptions(books_file=str(path))) == ["X1", "X2"]
    path.write_bytes(b"X1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=f"--books-file {path}: line 2: not UTF-8 text"):
        book_ids(PricingOptions(books_file=str(path)))
    with pytest.raises(ConfigError, match="not a regular file"):
        book_ids(PricingOptions(books_file="/dev/zero"))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        book_ids(PricingOptions(books_file=str(fifo)))
    with open(path, "wb") as f:
        f.truncate(limits.BOOKS_FILE_MAX_BYTES + 1)
    with pytest.raises(ConfigError, match="over the limit"):
        book_ids(PricingOptions(books_file=str(path)))
    with pytest.raises(ConfigError, match="cannot read"):
        book_ids(PricingOptions(books_file=str(tmp_path / "missing")))


def test_the_policies_take_their_defaults_from_the_options() -> None:
    defaults = PricingOptions()
    assert HttpPolicy() == HttpPolicy.of(defaults)
    assert RequestPolicy().timeout == RequestPolicy.of(defaults).timeout == defaults.dm_timeout
    given = PricingOptions(http_timeout=0.5, max_in_flight=3, api_rate=7.0, api_burst=2, dm_timeout=0.25)
    assert HttpPolicy.of(given) == HttpPolicy(timeout=0.5, max_in_flight=3, rate=7.0, burst=2)
    assert RequestPolicy.of(given) == RequestPolicy(timeout=0.25)
