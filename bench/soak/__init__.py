"""The release soak: the real system as an operator runs it, for hours, judged at the end.

``python launcher.py`` (uvloop, Ledger and Dashboard on) prices many books every tick from a CSV that
a feed thread appends to live (follow mode); the config is rewritten and reloaded with SIGHUP on a
schedule; a headless Chromium keeps the Dashboard open while its API is polled. At the end every
printed decision is checked against the rule (re-computed from the rows the feed wrote and the sold
flag) and against the Ledger, and the run fails on any restart, loop exception, short tick, memory
growth once warm or gauge that keeps growing. ``python -m bench.soak --help``;
docs/operating.md#the-release-soak.
"""

from bench.soak.report import judge, screen
from bench.soak.run import Observed, Plan, soak

__all__ = ["Observed", "Plan", "judge", "screen", "soak"]
