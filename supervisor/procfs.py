"""Memory of a process, read from /proc (no extra dependency). Linux only; 0 elsewhere or when the
process is gone."""

from __future__ import annotations

import os


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, IndexError, ValueError):
        return 0


def pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB: RSS with shared pages (libpython, libzmq, ...) divided
    among the processes sharing them, so summing it over processes does not count them five times."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0
