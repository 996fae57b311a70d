"""Fuzzing the config loader: whatever the text, the values or the files it names, the result is a
Config or a ConfigError saying ``file[:line]: ...`` — never another exception (issue 9 item 6)."""

import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.pricing.config import Config, ConfigError, load_config, parse_config
from actors.pricing.config.files import FileRefused, Line
from transport import limits

FRAGMENTS = ["[strategies.s]", "[strategies.t]", "[[books]]", "[guardrails]", "[guardrails.books.B1]", "[pause]",
             'ids = ["B1", "B2"]', 'file = "b.txt"', 'strategies = ["s"]', "window = 3", 'sold_factor = "1.2"',
             "delay = 0.5", 'floor = "1.00"', "ceiling = 5", 'ending = "0.99"', "max_step_pct = 5",
             'books = ["B1"]', 'catalog = "c.csv"', "allow_outside_paths = true", "[", "]", "=", '"', "'''",
             "= [[[[", "}", "{", "\\u0000", "1e999", "nan", "-inf", "0x10", "\x00", "\x7f", "\u0661", "# comment"]


def toml_string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    return out.replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


scalars = (st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.floats()
           | st.text(max_size=20) | st.sampled_from(["1.1", "0.99", "B1", "s", "1e999999999", "12.345", "", " B1"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
BASE: dict[str, Any] = {
    "strategies": {"s": {"window": 3, "delay": 0.5, "sold_factor": "1.2", "unsold_factor": 0.8}, "t": {}},
    "books": [{"ids": ["B1", "B2"], "strategies": ["s", "t"]}, {"file": "b.txt", "strategies": ["s"]}],
    "guardrails": {"floor": "1.00", "ceiling": 50, "ending": "0.99", "max_step_pct": 5, "catalog": "c.csv",
                   "books": {"B1": {"floor": "2", "ceiling": "9.99"}}},
    "pause": {"books": ["B2"], "strategies": ["t"]},
    "allow_outside_paths": False,
}
near_bounds = st.sampled_from([0, 1, -1, 0.5, 2, 2.01, 64, 65, 100, 100.000001, 3600, 3601, "0.01", "0.001",
                               "10000000", "10000000.01", "0.99", "1", "1e999999999", "١٢", "1_0", "", 1e308])


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def mutate(document: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        copy = dict(document)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = mutate(copy.get(head), rest, value, delete)
        return copy
    if not isinstance(document, list) or not isinstance(head, int) or head >= len(document):
        return document  # the path no longer leads anywhere (an earlier mutation replaced its parent)
    copy_list = list(document)
    copy_list[head] = mutate(copy_list[head], rest, value, delete)
    return copy_list


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """The valid BASE with one to three values replaced, removed or added anywhere."""
    document = BASE
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(document)))
        if draw(st.booleans()):
            path = (*path[:-1], draw(st.text(max_size=6)))  # a new key beside it (ignored in a list)
        value = draw(near_bounds | values)
        document = mutate(document, path, value, draw(st.integers(0, 5)) == 0)
    return document


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value, sometimes None (a file that cannot be read)."""
    return st.one_of(values, values, values, st.none())


class FuzzFiles:
    """Book lists and catalogs made of whatever hypothesis draws."""

    def __init__(self, books: list[str] | None, catalog: list[str] | None) -> None:
        self.books = books
        self.catalog = catalog

    def book_list(self, ref: str, allow_outside: bool) -> list[str]:
        if self.books is None:
            raise FileRefused("cannot read: No such file")
        return [book for book in self.books if limits.is_valid_book_id(book)]  # as read_book_list promises

    def catalog_lines(self, ref: str, allow_outside: bool) -> Iterator[Line]:
        if self.catalog is None:
            raise FileRefused("not a regular file")
        for number, text in enumerate(self.catalog, start=1):
            yield Line(number, text)


def check(text: str, files: FuzzFiles | None = None, tick: float | None = None) -> None:
    try:
        config = parse_config(text, "fuzz.toml", files, tick=tick)
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml"), exc
    else:
        assert isinstance(config, Config) and config.pairs


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=10), max_size=30).map("\n".join))
def test_arbitrary_toml_ish_text(text: str) -> None:
    check(text)


@settings(max_examples=300, deadline=None)
@given(documents(), maybe(st.lists(st.sampled_from(["B1", "B3", "B4"]) | st.text(max_size=10), min_size=1, max_size=5)),
       maybe(st.lists(st.sampled_from(["book_id,floor,ceiling,ending", "B1,1,2,0.99", "B2,,,", "B3,3,4,", '"'])
                      | st.text(max_size=20), min_size=1, max_size=6).map(lambda rows: ["book_id,floor,ceiling,ending",
                                                                                         *rows])),
       st.none() | st.none() | st.floats(min_value=0.01, max_value=10))
def test_arbitrary_values_at_every_key(document: dict[str, Any], books: list[str] | None, catalog: list[str] | None,
                                       tick: float | None) -> None:
    text = "\n".join(f"{toml_string(key)} = {toml_value(value)}" for key, value in document.items())
    check(text, FuzzFiles(books, catalog), tick)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_arbitrary_bytes_in_the_files(config_bytes: bytes, books_bytes: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_bytes(config_bytes)
        (Path(folder) / "b.txt").write_bytes(books_bytes)
        (Path(folder) / "c.csv").write_bytes(books_bytes)
        for text in (config_bytes, b'[guardrails]\ncatalog = "c.csv"\n[[books]]\nfile = "b.txt"\n'):
            path.write_bytes(text)
            try:
                load_config(path)
            except ConfigError as exc:
                assert str(exc).startswith(str(path))
