"""The inputs of a run of the strategies, declared and checked once: the competitor's price file and
the tick. The live system (the DataManager reads the file, the Scheduler ticks, the launcher starts
them) and the backtest (which replays the file at that tick) take the same options and refuse what can
give no decision in the same words. Each check raises :class:`Refusal` with the reason in one line."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from actors import paths
from actors.first_rows import DataCheck, check_data_file
from actors.options import option
from transport import files, limits
from transport.logs import printable


class Refusal(ValueError):
    """The command line asks for something that cannot work."""


def check_tick(tick: float) -> None:
    if not limits.TICK_MIN <= tick <= limits.TICK_MAX:
        raise ValueError(f"--tick must be within {limits.TICK_MIN}..{limits.TICK_MAX:.0f} s, got {tick}")


@dataclass(frozen=True, slots=True)
class RunInputs:
    """Declared here, borrowed by the DataManager, the Scheduler, the launcher and the backtest."""

    data_file: str = option(str(paths.DATA_FILE), "competitor prices CSV (default: data/data.csv in the project's "
                            "folder, whatever the working directory)", metavar="PATH")
    tick: float = option(5.0, "seconds between ticks", metavar="S")

    def __post_init__(self) -> None:
        check_tick(self.tick)


def readable_file(flag: str, path: str) -> None:
    """``path`` is an existing regular file we can open for reading."""
    shown = printable(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise Refusal(f"{flag} {shown}: no such file") from None
    except OSError as exc:
        raise Refusal(f"{flag} {shown}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise Refusal(f"{flag} {shown}: not a regular file")
    try:
        with files.open_bytes(path):  # never waits on a FIFO swapped in since the stat
            pass
    except OSError as exc:
        raise Refusal(f"{flag} {shown}: {exc.strerror}") from None


def data_file(flag: str, path: str, books: Sequence[str] | None, replay: bool) -> DataCheck:
    """What the start of the data file says about the books priced (None: any book):
    :mod:`actors.first_rows`. A file that can give no decision (no usable header, no
    valid row for any book priced) is refused in replay mode; in follow mode its rows may still come,
    so the verdict is returned for the launcher to say why it waits."""
    try:
        found = check_data_file(path, books)
    except OSError as exc:
        raise Refusal(f"{flag} {printable(path)}: {exc.strerror or exc}") from None
    if found.refused and replay:
        raise Refusal(found.problem(flag, path))
    return found
