"""Command-line options declared once, as dataclass fields: the default, the help text and the parser
live together (as jupyter_client keeps each knob's default and help together), and the same object
turns back into argv, so the launcher passes options to a child without restating any of them.

An options class is a frozen dataclass whose fields are made with :func:`option`; validation lives in
its ``__post_init__`` (a ``ValueError`` there becomes an argparse error). A class may hold another
whole (:func:`group`: its options appear under a heading of ``--help``), or reuse one option of
another class (:func:`borrow`: the launcher's ``--tick`` is the Scheduler's, declared there).

A flag name means one thing in every program of the system: ``--NAME-endpoint`` is always a ZeroMQ
endpoint, ``--data-file`` always the competitor prices CSV. A renamed flag keeps its old name for one
release (``deprecated=``): the old name still works, prints one ``warning:`` line on stderr naming the
new flag, and the new flag's ``--help`` lists it. Abbreviations are off (``allow_abbrev=False``): a
prefix of a flag is not one of its names, so an old name stops working when its alias goes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, field, fields
from typing import Any, Final, NoReturn, TypeVar

_T = TypeVar("_T")


def option(default: Any, help: str, *, parse: Callable[[str], Any] | None = None, metavar: str | None = None,
           choices: Sequence[str] | None = None, flag: str | None = None, deprecated: Sequence[str] = (),
           render: Callable[[Any], str] = str) -> Any:
    """A field that is also a command-line option ``--<name-with-dashes>`` (or ``flag``). A bool
    default of False makes a switch. ``parse`` turns the text into the value (default: the type of
    ``default``, or str); ``render`` turns the value back into text for :func:`to_argv`.
    ``deprecated`` lists old names of the flag, accepted with a warning until the next release."""
    metadata = {"help": help, "parse": parse, "metavar": metavar, "choices": choices, "flag": flag,
                "deprecated": tuple(deprecated), "render": render, "source": None}
    return field(default=default, metadata=metadata)


def borrow(cls: type[Any], name: str, *, flag: str | None = None, default: Any = MISSING, help: str | None = None,
           deprecated: Sequence[str] = ()) -> Any:
    """Option ``name`` of ``cls`` declared again for another class (the launcher's share of an actor's
    options): same parsing, rendering and default -- or ``default`` -- under its own ``flag`` and
    ``help`` if given. The old names of the source stay its own (an alias belongs to one program's
    history): ``deprecated`` gives the borrower's. :func:`borrowed` builds ``cls`` back from them."""
    source = _field(cls, name)
    metadata = {**source.metadata, "flag": flag or _flag(source), "deprecated": tuple(deprecated),
                "source": (cls, name)}
    if metadata["parse"] is None and source.default not in (None, MISSING) and not isinstance(source.default, bool):
        metadata["parse"] = type(source.default)  # parsed as the source's, even under another default (None)
    if help is not None:
        metadata["help"] = help
    return field(default=source.default if default is MISSING else default, metadata=metadata)


def group(cls: type[Any], title: str) -> Any:
    """A field holding a whole options class ``cls``; its options are listed under ``title``."""
    return field(default_factory=cls, metadata={"group": cls, "title": title})


def _field(cls: type[Any], name: str) -> Field[Any]:
    return next(f for f in fields(cls) if f.name == name)


def _flag(f: Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _options(cls: type[Any]) -> list[Field[Any]]:
    return [f for f in fields(cls) if "help" in f.metadata]


def _groups(cls: type[Any]) -> list[Field[Any]]:
    return [f for f in fields(cls) if "group" in f.metadata]


def default_of(cls: type[Any], name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (slotted dataclasses hide it from the class)."""
    return _field(cls, name).default


def flag_of(cls: type[Any], name: str) -> str:
    """The flag of option ``name`` of ``cls``, e.g. ``--data-file``."""
    return _flag(_field(cls, name))


NAMING: Final = ("A flag means one thing in every program of the repricer: --NAME-endpoint is a ZeroMQ\n"
                  "endpoint, --data-file the competitor prices CSV (the launcher's and the DataManager's).\n"
                  "A renamed flag keeps its old name until the next release: it works, with one warning line\n"
                  "on stderr.")


def make_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An argparse parser as every program of the system has it: no abbreviations of flags, the naming
    rule in its ``--help``, and a usage error in one line ``error: <why>`` with exit code 2 (not the
    whole usage first)."""
    return _Parser(prog=prog, description=plain_text(description), epilog=NAMING, allow_abbrev=False,
                   formatter_class=argparse.RawDescriptionHelpFormatter)


def plain_text(doc: str | None) -> str | None:
    """A module's docstring as a person reads it in ``--help``: no reStructuredText literals (````x````
    becomes ``x``, a ``::`` that opens an example a ``:``)."""
    return None if doc is None else doc.replace("``", "").replace("::\n", ":\n")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, ``error: <why>``, exit code 2 (argparse would print the whole usage first)."""
        self.exit(2, f"error: {message}\n")


class _Deprecated(argparse.Action):
    """An old name of a renamed flag: stores the value as the new name does and says once, on stderr,
    which flag to use instead."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new
        self.warned = False

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if not self.warned:
            self.warned = True
            print(f"warning: {option_string} is deprecated and goes in the next release: use {self.new}",
                  file=sys.stderr)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def add_options(parser: argparse.ArgumentParser, cls: type[Any], title: str | None = None, prefix: str = "") -> None:
    """Add one argparse option per :func:`option` field of ``cls`` (under the heading ``title`` if
    given), and those of each :func:`group` under its own heading. The dest is the field's name, prefixed
    by its group's for a field of a group (so two groups may have fields of one name)."""
    where = parser.add_argument_group(title) if title else parser
    for f in _options(cls):
        meta = f.metadata
        flag, dest, old = _flag(f), prefix + f.name, meta["deprecated"]
        default = f.default if f.default is not MISSING else None
        notes = [f"default {meta['render'](default)}"] if default not in (None, "") and default is not False else []
        if old:
            notes.append(f"old name {', '.join(old)}: deprecated, goes in the next release")
        text = meta["help"].replace("%", "%%") + (f" ({'; '.join(notes)})" if notes else "")
        if default is False:  # a switch
            where.add_argument(flag, dest=dest, action="store_true", help=text)
            parsing: dict[str, Any] = {"nargs": 0}
        else:
            parse = meta["parse"] or (type(default) if default is not None else str)
            metavar = meta["metavar"] or (None if meta["choices"] else f.name.upper())  # not the group's dest
            where.add_argument(flag, dest=dest, type=parse, default=default, metavar=metavar, choices=meta["choices"],
                               help=text)
            parsing = {"type": parse, "metavar": metavar, "choices": meta["choices"]}
        for name in old:  # hidden from --help: the new flag's help names it
            where.add_argument(name, dest=dest, action=_Deprecated, new=flag, default=argparse.SUPPRESS,
                               help=argparse.SUPPRESS, **parsing)
    for g in _groups(cls):
        add_options(parser, g.metadata["group"], g.metadata["title"], f"{prefix}{g.name}.")


def from_namespace(cls: type[_T], args: argparse.Namespace, parser: argparse.ArgumentParser) -> _T:
    """Build ``cls`` (and its groups) from parsed arguments; a validation error is a usage error."""
    try:
        return _build(cls, args, "")
    except ValueError as exc:
        parser.error(str(exc))


def _build(cls: type[_T], args: argparse.Namespace, prefix: str) -> _T:
    values = {f.name: getattr(args, prefix + f.name) for f in _options(cls) if hasattr(args, prefix + f.name)}
    values.update({g.name: _build(g.metadata["group"], args, f"{prefix}{g.name}.") for g in _groups(cls)})
    return cls(**values)


def to_argv(options: Any) -> list[str]:
    """The argv that parses back into ``options`` (only the values that differ from the default)."""
    argv: list[str] = []
    for f in fields(options):
        value = getattr(options, f.name)
        if "group" in f.metadata:
            argv += to_argv(value)
        elif "help" not in f.metadata or value == f.default:
            continue
        elif value is True:
            argv.append(_flag(f))
        elif value is not None and value is not False:
            argv += [_flag(f), f.metadata["render"](value)]
    return argv


def borrowed(options: Any, cls: type[_T], **overrides: Any) -> _T:
    """``cls`` made of the options that ``options`` borrowed from it (:func:`borrow`) and ``overrides``,
    validated by ``cls`` itself; its error names each option by the borrower's flag."""
    mine = [f for f in _options(type(options)) if f.metadata["source"] and f.metadata["source"][0] is cls]
    values = {f.metadata["source"][1]: getattr(options, f.name) for f in mine}
    try:
        return cls(**{**values, **overrides})
    except ValueError as exc:
        message = str(exc)
        for f in mine:
            theirs = flag_of(cls, f.metadata["source"][1])
            message = re.sub(rf"{re.escape(theirs)}(?![\w-])", _flag(f), message)
        raise ValueError(message) from None
