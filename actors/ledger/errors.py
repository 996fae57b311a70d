"""Database failures sorted into the kinds an operator can act on (counted per kind, logged with a
hint), from SQLite's result codes and the OS's errno. Pure: no I/O."""

from __future__ import annotations

import errno
import sqlite3
from types import MappingProxyType
from typing import Final

from actors.ledger.files import Change

# SQLite's primary result codes (https://www.sqlite.org/rescode.html) an operator can act on.
_SQLITE_KINDS: Final = MappingProxyType({3: "readonly", 5: "locked", 6: "locked", 8: "readonly", 10: "io",
                                         11: "corrupt", 13: "full", 14: "cantopen", 26: "corrupt"})
_ERRNO_KINDS: Final = MappingProxyType({errno.EROFS: "readonly", errno.EACCES: "readonly", errno.EPERM: "readonly",
                                        errno.ENOSPC: "full", errno.EDQUOT: "full", errno.ENOTDIR: "cantopen",
                                        errno.EISDIR: "cantopen"})
ERROR_KINDS: Final = ("corrupt", "readonly", "full", "locked", "cantopen", "io", "schema", "other")
HINTS: Final = MappingProxyType({
    "corrupt": "not a SQLite database, or damaged: fix or move it away (the Ledger never overwrites it)",
    "readonly": "cannot write: check the permissions of the file and of its directory",
    "full": "the disk (or --max-db-bytes) is full: free space, or keep less with --retain-days/--retain-rows",
    "locked": "locked by another process",
    "cantopen": "cannot open the file: check the path and its directory",
    "io": "an I/O error",
    "schema": "not a ledger database this version can use",
    "other": "unexpected database error",
})


class SchemaError(Exception):
    """The file is a SQLite database but not a ledger this version can use."""


class FileLost(Exception):
    """The database file the store has open is no longer the one at its path, or is damaged (see
    :mod:`actors.ledger.files`): what was committed to it since may be gone."""

    def __init__(self, change: Change) -> None:
        super().__init__(change.detail)
        self.change = change


def error_kind(exc: BaseException) -> str:
    """The kind of a database failure, one of :data:`ERROR_KINDS` (for counters and the hint)."""
    if isinstance(exc, SchemaError):
        return "schema"
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            return _SQLITE_KINDS.get(code & 0xFF, "other")
        return "other"
    if isinstance(exc, OSError):
        return _ERRNO_KINDS.get(exc.errno or 0, "io")
    return "other"
