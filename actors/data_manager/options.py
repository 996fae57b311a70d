"""The DataManager's command-line options (a light module: the launcher imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from actors import paths
from actors.data_manager.price_window import MODES
from actors.options import borrow, option
from actors.run_inputs import RunInputs
from transport import endpoints, limits

DEFAULT_DATA_FILE: Final = paths.DATA_FILE


@dataclass(frozen=True, slots=True)
class DataManagerOptions:
    data_endpoint: str = option(endpoints.DEFAULT_DATA, "ROUTER endpoint to bind", metavar="ENDPOINT",
                                deprecated=("--data",))
    data_file: str = borrow(RunInputs, "data_file", deprecated=("--csv",))
    mode: str = option("replay", "replay: tick k sees points k..k+N-1 of the book; follow: the newest N "
                       "points, tailing the file", choices=MODES)
    window_capacity: int = option(limits.WINDOW_MAX, "prices kept in memory per book; must be >= the "
                                  "requested count", metavar="W")
    max_books: int = option(limits.BOOKS_MAX, "distinct books kept at most; rows of further books are "
                            "refused, logged and counted", metavar="N")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 1 <= self.window_capacity <= limits.WINDOW_MAX:
            raise ValueError(f"--window-capacity must be within 1..{limits.WINDOW_MAX}")
        if not 1 <= self.max_books <= limits.BOOKS_MAX:
            raise ValueError(f"--max-books must be within 1..{limits.BOOKS_MAX}")
