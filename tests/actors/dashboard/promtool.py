"""Prometheus' own checker, ``promtool`` (Debian's ``prometheus`` package): ``check metrics`` on an
exposition, ``test rules`` on the shipped alerting rules. ``.ci/run`` installs it and sets
``REPRICER_NEED_PROMTOOL=1``, which turns its absence into a failure instead of a skip."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

NEEDED: bool = os.environ.get("REPRICER_NEED_PROMTOOL") == "1"


def promtool() -> str:
    """The path of promtool, or the test is skipped (failed under CI) saying how to get it."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not installed (apt-get install -y prometheus ships it)"
        if NEEDED:
            pytest.fail(message + ": REPRICER_NEED_PROMTOOL=1 needs it")
        pytest.skip(message)
    return found


def check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on ``text``: exit code 0 and no output when it has nothing to say."""
    return subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                          check=False)
