"""A process as /proc sees it (no extra dependency): its memory, its CPU time, whether it is alive.
Linux only; 0 (or False) elsewhere or when the process is gone."""

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


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (/proc/PID/stat, 10 ms resolution); 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # after the command name: state is field 0 here, utime field 11, stime field 12
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
