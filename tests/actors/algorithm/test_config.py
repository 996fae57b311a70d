from decimal import Decimal
from pathlib import Path

import pytest

from actors.algorithm.config import ConfigError, load_config, parse_config
from tests.helpers import REPO

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
    config = load_config(REPO / "repricer.example.toml")
    assert {pair.strategy.name for pair in config.pairs} == {"default", "cautious"}
    assert len(config.pairs) == 8


def test_book_files_are_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "books.txt").write_text("# ids\nX1\n\nX2\n")
    (tmp_path / "c.toml").write_text('[[books]]\nfile = "books.txt"\n')
    assert load_config(tmp_path / "c.toml").books == ["X1", "X2"]


@pytest.mark.parametrize(("text", "where"), [
    ("[[books]\n", "bad.toml: not valid TOML"),
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
    ('tick = 5\n[[books]]\nids = ["a"]\n', "unknown top-level key 'tick'"),
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
