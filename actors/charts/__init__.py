"""The vendored chart library, uPlot (``VENDORED.md`` here says what and how to update it), shared by
the Dashboard (which serves these files at ``/static/``) and the backtest's report (which inlines
them in one self-contained HTML file). Data files only: no code depends on either user."""

from __future__ import annotations

from pathlib import Path
from typing import Final

FOLDER: Final = Path(__file__).resolve().parent
UPLOT_JS: Final = FOLDER / "uPlot.iife.min.js"
UPLOT_CSS: Final = FOLDER / "uPlot.min.css"
