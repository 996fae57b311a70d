"""Command-line options declared once, as dataclass fields: the default, the help text and the parser
live together (as jupyter_client keeps each knob's default and help together), and the same object
turns back into argv, so the launcher passes options to a child without restating any of them.

An actor's options class is a frozen dataclass whose fields are made with :func:`option`; validation
lives in its ``__post_init__`` (a ``ValueError`` there becomes an argparse error).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, field, fields, replace
from typing import Any, TypeVar

_T = TypeVar("_T")


def option(default: Any, help: str, *, parse: Callable[[str], Any] | None = None, metavar: str | None = None,
           choices: Sequence[str] | None = None, flag: str | None = None, aliases: Sequence[str] = (),
           render: Callable[[Any], str] = str) -> Any:
    """A field that is also a command-line option ``--<name-with-dashes>`` (or ``flag``). A bool
    default of False makes a switch. ``parse`` turns the text into the value (default: the type of
    ``default``, or str); ``render`` turns the value back into text for :func:`to_argv`."""
    metadata = {"help": help, "parse": parse, "metavar": metavar, "choices": choices, "flag": flag,
                "aliases": tuple(aliases), "render": render}
    return field(default=default, metadata=metadata)


def _flag(f: Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _options(cls: type[Any]) -> list[Field[Any]]:
    return [f for f in fields(cls) if "help" in f.metadata]


def default_of(cls: type[Any], name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (slotted dataclasses hide it from the class)."""
    return next(f.default for f in fields(cls) if f.name == name)


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type[Any],
                only: Sequence[str] | None = None, flags: dict[str, str] | None = None) -> None:
    """Add one argparse option per :func:`option` field of ``cls`` (or of the fields named in ``only``;
    ``flags`` renames some, e.g. ``{"port": "--api-port"}``). The option's dest is the field's name."""
    for f in _options(cls):
        if only is not None and f.name not in only:
            continue
        meta = f.metadata
        flag = (flags or {}).get(f.name) or _flag(f)
        default = f.default if f.default is not MISSING else None
        if default is False:
            parser.add_argument(flag, *meta["aliases"], dest=f.name, action="store_true", help=meta["help"])
            continue
        parse = meta["parse"] or (type(default) if default is not None else str)
        shown = f" (default {meta['render'](default)})" if default not in (None, "") else ""
        parser.add_argument(flag, *meta["aliases"], dest=f.name, type=parse, default=default, metavar=meta["metavar"],
                            choices=meta["choices"], help=meta["help"].replace("%", "%%") + shown)


def from_namespace(cls: type[_T], args: argparse.Namespace, parser: argparse.ArgumentParser,
                   **extra: Any) -> _T:
    """Build ``cls`` from parsed arguments; a validation error is reported as a usage error."""
    values = {f.name: getattr(args, f.name) for f in _options(cls) if hasattr(args, f.name)}
    try:
        return cls(**values, **extra)
    except ValueError as exc:
        parser.error(str(exc))


def to_argv(options: Any) -> list[str]:
    """The argv that parses back into ``options`` (only the values that differ from the default)."""
    argv: list[str] = []
    for f in _options(type(options)):
        value = getattr(options, f.name)
        if value == f.default:
            continue
        if value is True:
            argv.append(_flag(f))
        elif value is not None and value is not False:
            argv += [_flag(f), f.metadata["render"](value)]
    return argv


def with_changes(options: _T, **changes: Any) -> _T:
    """A copy of ``options`` with some fields changed (validated again)."""
    return replace(options, **changes)  # type: ignore[type-var]
