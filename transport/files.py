"""Opening a file without ever waiting on it: every file whose path someone could replace (the data
file, configs, book lists, catalogs, keys, state and lock files, the backtest's files) is opened here.
Left out: the kernel's own (``/proc``, ``/dev/null``) and directories opened to fsync them.

``open()`` of a FIFO blocks until a writer comes (for ever, if none does), and reading a device such
as ``/dev/zero`` never ends. So a file is opened with ``O_NONBLOCK`` (the open of a FIFO returns at
once), then ``fstat`` says what was opened -- the descriptor, not the path, so a path swapped in
between cannot fool it -- and anything but a regular file (a FIFO, a device, a directory, a socket)
is refused with :class:`NotRegularFile`. ``O_NONBLOCK`` changes nothing for a regular file (its
reads never wait for data), so the descriptor is used as it is.

A symlink is followed: what it names is what is checked.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import IO, Any, BinaryIO, Final, TextIO, cast

READ: Final = os.O_RDONLY
WRITE_NEW: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC  # a file (re)written whole
_KINDS: Final = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"))


class NotRegularFile(OSError):
    """The path names something other than a regular file; ``strerror`` says what, ``filename`` where."""


def kind(mode: int) -> str:
    """What a file of ``st_mode`` is, for a message: "a FIFO", "a directory", ..."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def open_fd(path: str | os.PathLike[str], flags: int = READ, mode: int = 0o666) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file at ``path`` and its ``fstat``, opened without waiting.
    Raises ``OSError`` (``NotRegularFile`` for a FIFO, a device, a directory, ...)."""
    # O_NONBLOCK: a FIFO's open returns at once (a write-only one with ENXIO when it has no reader).
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({kind(info.st_mode)})", os.fsdecode(path))
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def _fdopen(path: str | os.PathLike[str], write: bool, mode: str, **kwargs: Any) -> IO[Any]:
    fd, _ = open_fd(path, WRITE_NEW if write else READ)
    try:
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def open_bytes(path: str | os.PathLike[str], write: bool = False, buffering: int = -1) -> BinaryIO:
    """``open(path, "rb")`` (``"wb"``: create or truncate) for a regular file only, never waiting."""
    return cast(BinaryIO, _fdopen(path, write, "wb" if write else "rb", buffering=buffering))


def open_text(path: str | os.PathLike[str], write: bool = False, encoding: str = "utf-8",
              newline: str | None = None) -> TextIO:
    """``open(path, "r")`` (``"w"``: create or truncate) for a regular file only, never waiting."""
    return cast(TextIO, _fdopen(path, write, "w" if write else "r", encoding=encoding, newline=newline))


def regular_or_absent(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is a regular file or does not exist (yet): before handing a path to a
    library that opens it itself and would block on a FIFO (SQLite). A swap after this check is still
    possible: see docs/limits.md."""
    try:
        fd, _ = open_fd(path)
    except NotRegularFile:
        raise
    except OSError:  # missing, or unreadable: the library's own open says so
        return
    os.close(fd)


def read_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    """The whole text of a (small) regular file, e.g. a template shipped with the package."""
    with open_text(path, encoding=encoding) as f:
        return f.read()
