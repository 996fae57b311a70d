"""Is the database file the Ledger has open still the one at its path, whole?

SQLite keeps writing to the files it opened whatever happens to their names: a database deleted, or
replaced by another file, or truncated to 0 bytes while the Ledger runs goes on taking commits that no
reader will ever see (in WAL mode SQLite does not look). The store records what its three files were
when it opened them (:func:`snapshot`) and compares after every commit (:func:`change`): the main file,
its ``-wal`` and its ``-shm`` must be the same files (device and inode), and the main file must not
have shrunk (it grows only when the store checkpoints, and never shrinks: the Ledger does not vacuum).
A damaged middle is a quick_check's to find (:mod:`actors.ledger.writer`).

:func:`change` and :func:`aside` are pure; :func:`snapshot` only stats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

SUFFIXES: Final = ("", "-wal", "-shm")  # SQLite's three files of a database in WAL mode
LOSS_KINDS: Final = ("deleted", "replaced", "truncated", "corrupt")
FileId = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the files at a database's path are: each one's identity (None: absent), and the main
    file's size."""

    ids: tuple[FileId | None, ...]  # in SUFFIXES order
    size: int


def snapshot(path: str) -> Snapshot:
    ids: list[FileId | None] = []
    size = 0
    for suffix in SUFFIXES:
        try:
            st = os.stat(path + suffix)
        except FileNotFoundError:
            ids.append(None)
            continue
        ids.append((st.st_dev, st.st_ino))
        if not suffix:
            size = st.st_size
    return Snapshot(tuple(ids), size)


@dataclass(frozen=True, slots=True)
class Change:
    """How the files at the path differ from those opened: ``kind`` one of LOSS_KINDS; ``main`` False
    when only the -wal or -shm file changed (the main file at the path is still the one open)."""

    kind: str
    detail: str
    main: bool


def change(path: str, opened: Snapshot, now: Snapshot) -> Change | None:
    """None while ``now`` (the files at ``path``) are the files of ``opened``, whole. The main file is
    judged first: SQLite may itself remove the -wal of a main file truncated under it, and that loss is
    the main file's (set aside), not the -wal's (closed and reopened, which finds the main file damaged)."""
    main = _moved(path, "", opened.ids[0], now.ids[0])
    if main is not None:
        return main
    if now.size < opened.size:
        return Change("truncated", f"{path} was truncated to {now.size} bytes (it had {opened.size}) while open",
                      main=True)
    for suffix, was, current in zip(SUFFIXES[1:], opened.ids[1:], now.ids[1:], strict=True):
        moved = _moved(path, suffix, was, current)
        if moved is not None:
            return moved
    return None


def _moved(path: str, suffix: str, was: FileId | None, current: FileId | None) -> Change | None:
    if was is None or was == current:  # a file absent at open is no one's to lose
        return None
    kind = "deleted" if current is None else "replaced"
    what = "was deleted" if current is None else "was replaced by another file"
    return Change(kind, f"{path}{suffix} {what} while open", main=not suffix)


def aside(path: str, label: str, now: datetime | None = None) -> str:
    """The name a file set aside gets, beside it: ``<path>.<label>-<UTC time>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{path}.{label}-{stamp}"
