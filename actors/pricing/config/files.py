"""Reading the files a config names (and ``--books-file``) as bounded text: the I/O edge of the config.

Every file is opened without waiting (a FIFO never blocks the open), must be a regular file (not
``/dev/zero``, a directory or a device), is read up to a size limit and a line-length limit, and
must be UTF-8. A path a config names must lie inside the config's folder (after symlinks are
resolved) unless the config sets ``allow_outside_paths = true``. Errors never quote a file's content
beyond a short escaped excerpt.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple, Protocol

from actors.csv_fields import LINE_TOO_LONG, NOT_UTF8
from transport import files, limits
from transport.logs import printable

LINE_MAX_BYTES: Final = limits.CSV_LINE_MAX_BYTES
_CANCEL_EVERY: Final = 4096  # lines between two looks at the cancel flag


class FileRefused(Exception):
    """A file that is not read, or not wholly: the message says why."""


class Cancelled(Exception):
    """The reading was cancelled (the actor is stopping)."""


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class Line(NamedTuple):
    no: int  # 1-based
    text: str | None  # without its line end; None when unreadable
    problem: str | None = None  # why unreadable: "line_too_long" or "not_utf8"


class ConfigFiles(Protocol):
    """The files a config names (``file = ...``, ``catalog = ...``), relative to the config. Both
    raise FileRefused (the catalog's lines possibly while being iterated)."""

    def book_list(self, ref: str, allow_outside: bool) -> list[str]: ...

    def catalog_lines(self, ref: str, allow_outside: bool) -> Iterable[Line]: ...


def _open_regular(path: Path, max_bytes: int) -> BinaryIO:
    try:
        fd, info = files.open_fd(path)
    except files.NotRegularFile as exc:
        raise FileRefused(str(exc.strerror)) from None
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror or exc}") from None
    try:
        if info.st_size > max_bytes:
            raise FileRefused(f"{info.st_size} bytes: over the limit of {max_bytes}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text(path: Path, max_bytes: int) -> str:
    """The whole file as text (the config itself)."""
    with _open_regular(path, max_bytes) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileRefused(f"over the limit of {max_bytes} bytes")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark some editors add
    except UnicodeDecodeError as exc:
        raise FileRefused(f"not UTF-8 text (byte {exc.start})") from None


def lines(path: Path, max_bytes: int, cancel: CancelFlag | None = None) -> Iterator[Line]:
    """Stream the file's lines, each at most ``LINE_MAX_BYTES`` (a longer one is yielded as
    unreadable and skipped to its end); at most ``max_bytes`` in all."""
    with _open_regular(path, max_bytes) as f:
        total = 0
        number = 0
        while True:
            raw = f.readline(LINE_MAX_BYTES + 1)
            if not raw:
                return
            number += 1
            total += len(raw)
            too_long = len(raw) > LINE_MAX_BYTES and not raw.endswith(b"\n")
            while too_long and raw and not raw.endswith(b"\n"):  # skip to the end of the long line
                raw = f.readline(LINE_MAX_BYTES)
                total += len(raw)
                if total > max_bytes:
                    break
            if total > max_bytes:
                raise FileRefused(f"grew over the limit of {max_bytes} bytes while being read")
            if cancel is not None and number % _CANCEL_EVERY == 0 and cancel.is_set():
                raise Cancelled()
            if too_long:
                yield Line(number, None, LINE_TOO_LONG)
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield Line(number, None, NOT_UTF8)
                continue
            yield Line(number, text.rstrip("\r\n"))


def resolve_inside(folder: Path, ref: str, allow_outside: bool) -> Path:
    """The path ``ref`` names, relative to ``folder``; refused if it leaves ``folder`` (absolute,
    ``..`` or a symlink pointing out) unless ``allow_outside``."""
    if not ref or "\x00" in ref or len(ref) > 4096:
        raise FileRefused("not a usable path")
    path = folder / ref
    if allow_outside:
        return path
    if Path(ref).is_absolute():
        raise FileRefused("an absolute path, but paths are relative to the config's folder (set "
                          "allow_outside_paths = true at the top of the config to allow it)")
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise FileRefused(f"cannot resolve: {printable(exc, 80)}") from None
    if not inside:
        raise FileRefused("leads outside the config's folder (set allow_outside_paths = true at the top of "
                          "the config to allow it)")
    return path


def book_of_line(text: str) -> str:
    """The book id a line of a books file names: ``#`` starts a comment anywhere on the line (so a
    books file cannot list an id holding ``#``), and spaces around the id are stripped; empty for a
    blank or comment line."""
    return text.partition("#")[0].strip()


def read_book_list(path: Path, cancel: CancelFlag | None = None) -> list[str]:
    """Book ids, one per line (:func:`book_of_line`: ``#`` comments anywhere, ids stripped); blank
    and comment lines skipped; duplicates dropped, order kept. Any bad line refuses the whole file,
    naming the line."""
    ids: dict[str, None] = {}
    for line in lines(path, limits.BOOKS_FILE_MAX_BYTES, cancel):
        if line.text is None:
            reason = "longer than the line limit" if line.problem == LINE_TOO_LONG else "not UTF-8 text"
            raise FileRefused(f"line {line.no}: {reason}")
        book = book_of_line(line.text.removeprefix("\ufeff") if line.no == 1 else line.text)  # tolerate a BOM
        if not book:
            continue
        if not limits.is_valid_book_id(book):
            raise FileRefused(f"line {line.no}: not a valid book id ({printable(book, 40)}): 1..."
                              f"{limits.BOOK_ID_MAX_LEN} printable characters")
        ids[book] = None
        if len(ids) > limits.BOOKS_MAX:
            raise FileRefused(f"line {line.no}: more than {limits.BOOKS_MAX} books")
    return list(ids)


class LocalFiles:
    """The files a config names, read from disk relative to the config's folder; remembers what it
    opened (a reload watches those files too)."""

    def __init__(self, folder: Path, cancel: CancelFlag | None = None) -> None:
        self._folder = folder
        self._cancel = cancel
        self.opened: list[str] = []

    def _path(self, ref: str, allow_outside: bool) -> Path:
        path = resolve_inside(self._folder, ref, allow_outside)
        self.opened.append(str(path))
        return path

    def book_list(self, ref: str, allow_outside: bool) -> list[str]:
        return read_book_list(self._path(ref, allow_outside), self._cancel)

    def catalog_lines(self, ref: str, allow_outside: bool) -> Iterator[Line]:
        return lines(self._path(ref, allow_outside), limits.CATALOG_MAX_BYTES, self._cancel)
