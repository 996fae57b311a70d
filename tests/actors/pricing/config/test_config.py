import os
from decimal import Decimal
from pathlib import Path

import pytest

from actors.pricing.config import ConfigError, load_config, parse_config
from tests.helpers import REPO
from transport import limits

GOOD = """
[strategies.default]
delay = 1

[strategies.fast]
kind = "window-average"
window = 3
sold_factor = "1.2"
unsold_factor = 0.8
delay = 0.25

[[books]]
ids = ["A", "B"]
strategies = ["default", "fast"]

[[books]]
ids = ["C", "A"]
strategies = ["default"]
"""


def test_books_and_their_strategies() -> None:
    config = parse_config(GOOD, "good.toml")
    assert sorted(pair.key for pair in config.pairs) == [
        ("A", "default"), ("A", "fast"), ("B", "default"), ("B", "fast"), ("C", "default")]
    fast = config.strategies["fast"]
    assert fast.rule.window == 3 and fast.rule.sold_factor == Decimal("1.2")
    assert fast.rule.unsold_factor == Decimal("0.8") and fast.delay == Decimal("0.25")
    assert config.strategies["default"].rule.sold_factor == Decimal("1.1")
    assert config.books == ["A", "B", "C"]


def test_the_shipped_example_loads() -> None:
    config = load_config(REPO / "repricer.example.toml", tick=5.0)
    assert {pair.strategy.name for pair in config.pairs} == {"default", "cautious"}
    assert len(config.pairs) == 8 and not config.warnings
    assert config.has_guardrails and str(REPO / "data" / "catalog.example.csv") in config.files
    b001, b002 = config.guardrails_for("B001"), config.guardrails_for("B002")
    assert (b001.floor, b001.ending, b001.max_step_pct) == (Decimal("17.50"), Decimal("0.49"), Decimal(10))
    assert (b002.floor, b002.ceiling, b002.max_step_pct) == (Decimal("18.00"), Decimal("25.00"), Decimal(6))
    assert not config.is_paused("B001", "default")


def test_book_files_are_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "books.txt").write_text("\ufeff# ids\nX1\r\n\nX2\n")
    (tmp_path / "c.toml").write_text('\ufeff[[books]]\nfile = "books.txt"\n')
    assert load_config(tmp_path / "c.toml").books == ["X1", "X2"]


@pytest.mark.parametrize(("text", "where"), [
    ("[[books]\n", "bad.toml:1: not valid TOML"),
    ('[strategies.s]\nwindow = 0\n[[books]]\nids = ["a"]\n', "bad.toml:2: strategies.s.window"),
    ('[strategies.s]\ndelay = -1\n[[books]]\nids = ["a"]\n', "bad.toml:2: strategies.s.delay"),
    ('[strategies.s]\nsold_factor = "abc"\n[[books]]\nids = ["a"]\n', "bad.toml:2: strategies.s.sold_factor"),
    ('[strategies.s]\nunsold_factor = 0\n[[books]]\nids = ["a"]\n', "bad.toml:2: strategies.s.unsold_factor"),
    ('[strategies.s]\nkind = "magic"\n[[books]]\nids = ["a"]\n', "bad.toml:2: strategies.s.kind"),
    ('[strategies.s]\ncolour = 1\n[[books]]\nids = ["a"]\n', "bad.toml:2: strategies.s.colour"),
    ('[strategies.s]\n[[books]]\nids = ["a"]\n[[books]]\nids = ["b"]\nstrategies = ["t"]\n',
     "bad.toml:6: books.strategies"),
    ('[[books]]\nids = [1]\n', "bad.toml:2: books.ids"),
    ('[[books]]\nstrategies = ["default"]\n', "bad.toml:1: books"),
    ('[[books]]\nfile = "missing.txt"\n', "bad.toml:2: books.file"),
    ('tick = 5\n[[books]]\nids = ["a"]\n', "bad.toml:1: tick: unknown key"),
    ('[strategies.a]\n[strategies.b]\n[[books]]\nids = ["a"]\n', "books.strategies"),
    ("", "at least one [[books]]"),
])
def test_errors_name_the_file_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert where in str(error.value).replace(str(tmp_path) + "/", "")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


# --- issue 9 item 6: the loader trusts nothing ------------------------------------------------


def error_of(tmp_path: Path, text: str | bytes, **kwargs: object) -> str:
    path = tmp_path / "bad.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    return str(error.value).replace(str(tmp_path) + "/", "")


BOOKS = '[[books]]\nids = ["a"]\n'


@pytest.mark.parametrize(("text", "expected"), [
    ('[strategies.s]\nsold_factor = "1e999999999"\n' + BOOKS, "bad.toml:2: strategies.s.sold_factor: must be within"),
    ('[strategies.s]\nsold_factor = "1e99999999999999999999"\n' + BOOKS, "bad.toml:2: strategies.s.sold_factor"),
    ('[strategies.s]\nunsold_factor = "\u0661"\n' + BOOKS, "bad.toml:2: strategies.s.unsold_factor: expected a number"),
    ('[strategies.s]\nunsold_factor = "1_0"\n' + BOOKS, "bad.toml:2: strategies.s.unsold_factor: expected a number"),
    ('[strategies.s]\ndelay = 1e30\n' + BOOKS, "bad.toml:2: strategies.s.delay: must be within 0..3600"),
    ('[strategies.s]\ndelay = inf\n' + BOOKS, "bad.toml:2: strategies.s.delay: expected a number"),
    ('[strategies.s]\ndelay = nan\n' + BOOKS, "bad.toml:2: strategies.s.delay: expected a number"),
    ('[strategies.s]\ndelay = "NaN"\n' + BOOKS, "bad.toml:2: strategies.s.delay: expected a number"),
    ('[strategies.s]\ndelay = true\n' + BOOKS, "bad.toml:2: strategies.s.delay: expected a number"),
    ('[strategies.s]\ndelay = [1]\n' + BOOKS, "bad.toml:2: strategies.s.delay: expected a number (ASCII digits), "
                                              "got a list"),
    ('[strategies.s]\nwindow = 99999999999999999999\n' + BOOKS, "bad.toml:2: strategies.s.window"),
    ('[strategies.s]\nwindow = 65\n' + BOOKS, "bad.toml:2: strategies.s.window: expected an integer 1..64"),
    ("[strategies.s]\nkind = [[[]]]\n" + BOOKS, "bad.toml:2: strategies.s.kind"),
    ("strategies = 3\n" + BOOKS, "bad.toml:1: strategies: expected a table"),
    ("strategies = {}\n" + BOOKS, "bad.toml:1: strategies"),
    ('[strategies."a b"]\n' + BOOKS, "strategies.a b: a strategy name is"),
    ("books = [1, 2]\n", "bad.toml:1: books: expected a table, got 1"),
    ("books = 'x'\n", "bad.toml:1: books: at least one [[books]] table"),
    ('[[books]]\nids = "a"\n', "bad.toml:2: books.ids: expected a list"),
    ('[[books]]\nids = ["a\\u0000b"]\n', "bad.toml:2: books.ids: 'a\\x00b' is not a valid book id"),
    ('[[books]]\nids = [" "]\n', "bad.toml:2: books.ids"),
    ('[[books]]\nids = ["' + "x" * 129 + '"]\n', "bad.toml:2: books.ids"),
    ('[[books]]\nfile = 7\n', "bad.toml:2: books.file: expected a string"),
    ('[[books]]\nids = ["a"]\nstrategies = "default"\n', "bad.toml:3: books.strategies: expected a list"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "bad.toml: not valid TOML: nested too deeply"),
    ("a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n", "bad.toml: not valid TOML: nested too deeply"),
    ("a = 1" + "0" * 5000 + "\n", "not valid TOML"),
    (b"\xff\xfe[[books]]\n", "bad.toml: not UTF-8 text (byte 0)"),
    ("allow_outside_paths = 1\n" + BOOKS, "bad.toml:1: allow_outside_paths: expected true or false"),
])
def test_hostile_values_are_refused_with_file_line_and_key(tmp_path: Path, text: str | bytes, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_a_config_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    with open(path, "wb") as f:
        f.truncate(limits.CONFIG_MAX_BYTES + 1)  # sparse: refused on its size, not read
    with pytest.raises(ConfigError, match="over the limit"):
        load_config(path)
    with pytest.raises(ConfigError, match="over the limit"):
        parse_config("#" * (limits.CONFIG_MAX_BYTES + 1))


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "/"])
def test_the_config_must_be_a_regular_file(target: str) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(target)


def test_a_strategy_delay_must_be_shorter_than_the_tick(tmp_path: Path) -> None:
    text = "[strategies.slow]\ndelay = 3\n[strategies.fast]\ndelay = 0.5\n" \
           '[[books]]\nids = ["a"]\nstrategies = ["slow", "fast"]\n'
    message = error_of(tmp_path, text, tick=2.0)
    assert message.startswith("bad.toml:2: strategies.slow.delay: 3 s is not shorter than the tick (2.0 s)")
    assert len(parse_config(text, tick=5.0).pairs) == 2
    assert "strategies.slow.delay" in error_of(tmp_path, text.replace("3", "2"), tick=2.0)  # equal is refused
    for tick in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tick must be a positive number"):
            parse_config(text, tick=tick)


# --- book files: bounded text inside the config's folder ---------------------------------------


def config_with_file(tmp_path: Path, ref: str, extra: str = "") -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    path = folder / "c.toml"
    path.write_text(f'{extra}[[books]]\nfile = "{ref}"\n')
    return path


@pytest.mark.parametrize("ref", ["/etc/passwd", "../outside.txt", "../../../../etc/passwd", "sub/../../outside.txt",
                                 "link.txt"])
def test_book_files_outside_the_config_folder_are_refused(tmp_path: Path, ref: str) -> None:
    (tmp_path / "outside.txt").write_text("SECRET\n")
    path = config_with_file(tmp_path, ref)
    (path.parent / "sub").mkdir()
    (path.parent / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value).replace(str(tmp_path), "")
    assert ":2: books.file:" in message and "allow_outside_paths = true" in message
    assert "SECRET" not in message and "root:" not in message


def test_allow_outside_paths_lets_a_config_name_any_file(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("X1\n")
    path = config_with_file(tmp_path, str(tmp_path / "outside.txt"), "allow_outside_paths = true\n")
    assert load_config(path).books == ["X1"]
    path = config_with_file(tmp_path, "../outside.txt", "allow_outside_paths = true\n")
    assert load_config(path).books == ["X1"]


@pytest.mark.parametrize(("content", "expected"), [
    (b"\x00\x01\x02binary\xff\n", "line 1: not UTF-8 text"),
    (b"ok\nroot:x:0:0:\x07\n", "line 2: not a valid book id"),
    (b"  spaced  \n" + b"x" * 129 + b"\n", "line 2: not a valid book id"),
    (b"a\n" + b"y" * (limits.CSV_LINE_MAX_BYTES + 10) + b"\nb\n", "line 2: longer than the line limit"),
])
def test_bad_book_files_are_refused_naming_the_line(tmp_path: Path, content: bytes, expected: str) -> None:
    path = config_with_file(tmp_path, "books.txt")
    (path.parent / "books.txt").write_bytes(content)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert f":2: books.file: 'books.txt': {expected}" in str(error.value)


def test_special_files_are_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "zero").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo")  # opening a FIFO for reading would wait for a writer forever
    (folder / "dir").mkdir()
    for ref in ("zero", "fifo", "dir"):
        path = config_with_file(tmp_path, ref, "allow_outside_paths = true\n")
        with pytest.raises(ConfigError, match="not a regular file"):
            load_config(path)
    big = folder / "big.txt"
    with open(big, "wb") as f:
        f.truncate(limits.BOOKS_FILE_MAX_BYTES + 1)
    with pytest.raises(ConfigError, match="over the limit"):
        load_config(config_with_file(tmp_path, "big.txt"))


def test_a_factor_with_more_decimals_than_a_decision_carries_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[strategies.default]\nsold_factor = "1.1000000000000000000000000000000000001"\n')
    with pytest.raises(ConfigError, match=r"sold_factor.*at most 36 decimals"):
        load_config(str(path))
