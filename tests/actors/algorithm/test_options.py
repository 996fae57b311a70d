import argparse
import os
from pathlib import Path

import pytest

from actors.algorithm.clients.api import HttpPolicy
from actors.algorithm.clients.data_manager import RequestPolicy
from actors.algorithm.options import (
    AlgorithmOptions,
    PricingOptions,
    book_ids,
    byte_size,
    ordinal,
    render_size,
    spool_path,
    with_worker_from_env,
)
from actors.pricing.config import ConfigError, load_config
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


def test_a_comment_starts_anywhere_on_a_books_files_line(tmp_path: Path) -> None:
    # Issue 21: "ISBN978000003 # trailing comment" was priced as one id and failed every tick.
    path = tmp_path / "books.txt"
    path.write_text("\ufeffISBN978000001   # first\n\t ISBN978000002\t\n# ISBN978000009 commented out\n"
                    "ISBN978000003 # trailing comment\nISBN978000004#no space\n   # only a comment\n")
    assert book_ids(PricingOptions(books_file=str(path))) == ["ISBN978000001", "ISBN978000002", "ISBN978000003",
                                                               "ISBN978000004"]
    # The same reading in a config's [[books]] file = ...
    (tmp_path / "c.toml").write_text('[[books]]\nfile = "books.txt"\n')
    assert load_config(tmp_path / "c.toml").books == ["ISBN978000001", "ISBN978000002", "ISBN978000003",
                                                      "ISBN978000004"]


def test_the_policies_take_their_defaults_from_the_options() -> None:
    defaults = PricingOptions()
    assert HttpPolicy() == HttpPolicy.of(defaults)
    assert RequestPolicy().timeout == RequestPolicy.of(defaults).timeout == defaults.dm_timeout
    given = PricingOptions(http_timeout=0.5, max_in_flight=3, api_rate=7.0, api_burst=2, dm_timeout=0.25)
    assert HttpPolicy.of(given) == HttpPolicy(timeout=0.5, max_in_flight=3, rate=7.0, burst=2)
    assert RequestPolicy.of(given) == RequestPolicy(timeout=0.25)


@pytest.mark.parametrize(("text", "index"), [("0", 0), ("3", 3), ("algorithm-3", 3), ("repricer-algorithm-12", 12),
                                             (" 7\n", 7)])
def test_an_ordinal_from_a_number_or_a_pod_name(text: str, index: int) -> None:
    assert ordinal(text) == index


@pytest.mark.parametrize("text", ["", "algorithm", "algorithm-", "algorithm-x", "-1x", "algorithm-\u0663",
                                  "algorithm-1234567"])
def test_anything_else_is_no_ordinal(text: str) -> None:
    with pytest.raises(ValueError, match="is neither a number nor a name ending in -N"):
        ordinal(text)


def test_the_worker_index_comes_from_the_environment() -> None:
    options = AlgorithmOptions(workers_total=3, worker_from_env="POD_NAME")
    resolved = with_worker_from_env(options, {"POD_NAME": "algorithm-2"})
    assert (resolved.worker, resolved.worker_from_env, resolved.workers_total) == (2, None, 3)
    assert with_worker_from_env(AlgorithmOptions(worker=1, workers_total=2), {}).worker == 1  # not asked: unchanged
    with pytest.raises(ValueError, match="--worker-from-env POD_NAME: no such environment variable"):
        with_worker_from_env(options, {})
    with pytest.raises(ValueError, match=r"--worker-from-env POD_NAME: index 3 is not in 0\.\.2"):
        with_worker_from_env(options, {"POD_NAME": "algorithm-3"})
    with pytest.raises(ValueError, match="'web' is neither a number"):
        with_worker_from_env(options, {"POD_NAME": "web"})
    with pytest.raises(ValueError, match="--worker and --worker-from-env are exclusive"):
        AlgorithmOptions(workers_total=3, worker=1, worker_from_env="POD_NAME")


def test_config_poll_is_off_or_a_sane_interval() -> None:
    assert PricingOptions().config_poll == 0
    assert PricingOptions(config_poll=2).config_poll == 2
    for bad in (0.01, -1, 5000, float("nan")):
        with pytest.raises(ValueError, match="--config-poll must be 0"):
            PricingOptions(config_poll=bad)


def test_a_spool_size_reads_binary_units_and_refuses_anything_else() -> None:
    assert [byte_size(text) for text in ("500000", "64M", "1g", "16KB", " 2T ")] == [
        500_000, 64 << 20, 1 << 30, 16 << 10, 2 << 40]
    for bad in ("", "M", "1.5G", "-1", "10X", "1e6"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a size in bytes"):
            byte_size(bad)
    assert [render_size(n) for n in (1 << 30, 3 << 20, 1000)] == ["1G", "3M", "1000"]


def test_the_spool_is_the_workers_own_and_bounded_from_below() -> None:
    assert spool_path(AlgorithmOptions(spool_dir="/s", workers_total=3, worker=2)) == Path("/s/algorithm-2")
    with pytest.raises(ValueError, match="--spool-max-bytes must be at least 1M"):
        AlgorithmOptions(spool_max_bytes=(1 << 20) - 1)
    with pytest.raises(ValueError, match="--ledger-backlog"):
        AlgorithmOptions(ledger_backlog=0)
