"""The one declaration of an option (:mod:`actors.options`): parsed, validated, grouped, borrowed by
another class, turned back into argv, and renamed with a deprecated old name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from actors.options import (
    add_options,
    borrow,
    borrowed,
    from_namespace,
    group,
    make_parser,
    option,
    plain_text,
    to_argv,
)


@dataclass(frozen=True, slots=True)
class Source:
    size: int = option(3, "how many", metavar="N", deprecated=("--count",))
    name_endpoint: str = option("tcp://127.0.0.1:1", "where", metavar="ENDPOINT")
    loud: bool = option(False, "say more", deprecated=("--verbose",))
    where: str | None = option(None, "a path", metavar="PATH")

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 9:
            raise ValueError("--size must be within 1..9")


@dataclass(frozen=True, slots=True)
class Inner:
    size: int = option(1, "the inner size (a name the outer class has too)")


@dataclass(frozen=True, slots=True)
class Borrower:
    source_size: int = borrow(Source, "size", flag="--source-size")
    name_endpoint: str = borrow(Source, "name_endpoint", default="ipc:///x", help="where the source is")
    inner: Inner = group(Inner, "inner")

    def __post_init__(self) -> None:
        borrowed(self, Source)


def parse(cls: type, argv: list[str]) -> object:
    parser = make_parser("test", None)
    add_options(parser, cls)
    return from_namespace(cls, parser.parse_args(argv), parser)


def test_a_declaration_parses_and_turns_back_into_argv() -> None:
    options = parse(Source, ["--size", "5", "--loud", "--where", "/p"])
    assert options == Source(size=5, loud=True, where="/p")
    assert to_argv(options) == ["--size", "5", "--loud", "--where", "/p"]  # defaults are left out
    assert parse(Source, to_argv(options)) == options


def test_a_bad_value_is_one_error_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(Source, ["--size", "10"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == "error: --size must be within 1..9\n"


def test_an_old_name_works_warns_once_and_is_hidden_from_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse(Source, ["--count", "4", "--count", "6", "--verbose"]) == Source(size=6, loud=True)
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: --count is deprecated and goes in the next release: use --size",
                   "warning: --verbose is deprecated and goes in the next release: use --loud"]
    parser = make_parser("test", None)
    add_options(parser, Source)
    text = parser.format_help()
    assert "old name --count: deprecated" in text and "old name --verbose: deprecated" in text
    assert "  --count" not in text  # listed under the new name only


def test_a_prefix_of_a_flag_is_not_a_name_of_it(capsys: pytest.CaptureFixture[str]) -> None:
    # Else --name would still reach --name-endpoint once no alias claims it.
    with pytest.raises(SystemExit):
        parse(Source, ["--name", "tcp://127.0.0.1:2"])
    assert "unrecognized arguments: --name" in capsys.readouterr().err


def test_a_borrowed_option_keeps_the_declaration_under_its_own_flag(capsys: pytest.CaptureFixture[str]) -> None:
    options = parse(Borrower, ["--source-size", "4", "--size", "2"])
    assert options == Borrower(source_size=4, inner=Inner(size=2))  # a group's field of a name the outer has
    assert options.name_endpoint == "ipc:///x"  # its own default
    assert borrowed(options, Source, where="/q") == Source(size=4, name_endpoint="ipc:///x", where="/q")
    assert parse(Borrower, to_argv(options)) == options
    with pytest.raises(SystemExit):
        parse(Borrower, ["--source-size", "0"])
    # The source's validation, in the borrower's words; no old name of the source's comes along.
    assert capsys.readouterr().err == "error: --source-size must be within 1..9\n"
    with pytest.raises(SystemExit):
        parse(Borrower, ["--count", "4"])


def test_help_shows_a_docstring_without_its_markup() -> None:
    assert plain_text("Run ``x --y``, like this::\n\n    x --y\n") == "Run x --y, like this:\n\n    x --y\n"
    assert plain_text(None) is None
    help_text = make_parser("prog", "Reads ``--data-file``::\n\n    prog\n").format_help()
    assert "``" not in help_text and "Reads --data-file:\n" in help_text
