"""Giving freed memory back to the system after a flood.

glibc keeps the heap it freed for later use: after a flood had libzmq buffer the messages of thousands of
connections, the DataManager's resident size stayed at its peak (184 MiB, never down again; issue 20).
``malloc_trim`` returns what is free at the top of each arena and, since glibc 2.8, whole free pages
inside them, of every thread's arena (libzmq's I/O thread has its own).
"""

from __future__ import annotations

import ctypes
import sys


def trim() -> bool:
    """Return free heap memory to the system; False where there is no glibc (nothing done)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # another C library (musl has no malloc_trim)
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))
