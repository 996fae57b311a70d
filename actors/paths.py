"""Where the project's own files are by default, whatever the working directory: beside the code, in
the project's folder (the one holding ``actors/``). ``--data-file``, ``--db`` and ``--spool-dir`` default to these, so a
launcher started from another directory reads the same prices and continues the same history (a
relative default once made a new, empty ledger in each working directory: issue 21)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
DATA_FILE: Final = PROJECT_DIR / "data" / "data.csv"  # the DataManager's --data-file
LEDGER_DB: Final = PROJECT_DIR / "var" / "ledger.sqlite3"  # the Ledger's --db, the Dashboard's and the CLI's
SPOOL_DIR: Final = PROJECT_DIR / "var" / "spool"  # the Algorithm workers' --spool-dir (one folder per worker)
