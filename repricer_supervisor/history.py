"""What the launcher says at start about the Ledger's database: one line with where it is and what it
holds (:mod:`actors.ledger.found`), and a warning when it starts a new, empty one while another
database holds history -- the old default, ``var/ledger.sqlite3`` in the working directory, or the
project's default when ``--db`` names another file -- so that history never goes missing silently."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from actors.ledger.found import Found, iso, look
from actors.ledger.options import DEFAULT_DB

OLD_DEFAULT = os.path.join("var", "ledger.sqlite3")  # relative to the working directory, before issue 21


def elsewhere(db: str, cwd: str) -> list[str]:
    """The other databases a user may have meant, absolute, without ``db``: the old relative default
    in ``cwd`` and the project's default."""
    mine = os.path.realpath(db)
    seen: dict[str, None] = {}
    for candidate in (os.path.join(cwd, OLD_DEFAULT), DEFAULT_DB):
        if os.path.realpath(candidate) != mine:
            seen[os.path.abspath(candidate)] = None
    return list(seen)


def start_lines(db: str, cwd: str, look_at: Iterable[str] | None = None) -> list[tuple[int, str]]:
    """The (level, line) pairs to log at start for the Ledger's database ``db``."""
    found = look(db)
    lines = [(logging.INFO, f"ledger: {found.describe()}")]
    if found.history or found.problem is not None:
        return lines
    for other in elsewhere(db, cwd) if look_at is None else look_at:
        earlier: Found = look(other)
        if earlier.history:
            newest = "?" if earlier.newest_ts is None else iso(earlier.newest_ts)
            held = f"{earlier.decisions} decision(s) of {earlier.pairs} pair(s) (the newest at {newest})"
            lines.append((logging.WARNING, f"ledger: starting a new, empty database at {found.path}, but "
                          f"{earlier.path} holds {held}: pairs start from the competitor's average; to continue that "
                          f"history pass --db {earlier.path}"))
    return lines

