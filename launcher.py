"""Start the whole repricer, each actor in its own OS process, and supervise it: ``python launcher.py
--help``. The code lives in :mod:`repricer_supervisor.launcher` (an installed top-level ``launcher``
module would be a generic name in site-packages)."""

from __future__ import annotations

import sys

from repricer_supervisor.launcher import main

if __name__ == "__main__":
    sys.exit(main())
