"""deploy/systemd: the units pass ``systemd-analyze verify`` (where it exists), and an actor run with
systemd's environment sends READY=1, then WATCHDOG=1 from its event loop (none while it is stopped, so
systemd's WatchdogSec would kill it), and STOPPING=1 on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.sd_notify import NotifyConfig
from tests.helpers import REPO, ipc_endpoint

UNITS = REPO / "deploy" / "systemd"


def test_notify_config_from_the_environment() -> None:
    assert NotifyConfig.from_environ({}, 42) is None
    assert NotifyConfig.from_environ({"NOTIFY_SOCKET": "relative/path"}, 42) is None
    assert NotifyConfig.from_environ({"NOTIFY_SOCKET": "/run/n"}, 42) == NotifyConfig("/run/n", None)
    assert NotifyConfig.from_environ({"NOTIFY_SOCKET": "@abc", "WATCHDOG_USEC": "3000000"}, 42) == \
        NotifyConfig(b"\0abc", 1.5)
    # The watchdog is for the process named, when one is named.
    assert NotifyConfig.from_environ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "7"},
                                     42) == NotifyConfig("/n", None)
    assert NotifyConfig.from_environ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "x"}, 42) == NotifyConfig("/n", None)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_units_verify(tmp_path: Path) -> None:
    # Instances as systemd would load them; ExecStart's interpreter must exist here, so it is this one.
    for unit, instance in (("repricer@.service", "repricer@ledger.service"),
                           ("repricer-algorithm@.service", "repricer-algorithm@3.service"),
                           ("repricer.target", "repricer.target")):
        text = (UNITS / unit).read_text(encoding="utf-8").replace("/opt/repricer/bin/python", sys.executable)
        (tmp_path / instance).write_text(text, encoding="utf-8")
    names = ["repricer@ledger.service", "repricer-algorithm@3.service", "repricer.target"]
    result = subprocess.run(["systemd-analyze", "verify", *names], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    broken = (tmp_path / "repricer@ledger.service").read_text().replace("Type=notify", "Type=notifyy")
    (tmp_path / "repricer@bad.service").write_text(broken)
    refused = subprocess.run(["systemd-analyze", "verify", "repricer@bad.service"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert "Failed to parse service type" in refused.stderr  # the check reads what it is given


def receive(sock: socket.socket, timeout: float) -> list[str]:
    """The messages that arrive within ``timeout`` seconds."""
    messages = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return messages


def test_an_actor_run_by_systemd_notifies_it_from_its_event_loop(tmp_path: Path, ipc_dir: Path) -> None:
    path = str(ipc_dir / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "600000"}  # WatchdogSec=0.6
        process = subprocess.Popen([sys.executable, "-m", "actors", "scheduler", "--ticks-endpoint",
                                    ipc_endpoint(ipc_dir, "ticks")], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            sock.settimeout(20)
            assert sock.recv(4096).decode().splitlines() == ["READY=1", "STATUS=ready"]
            assert receive(sock, 1.0).count("WATCHDOG=1") >= 2  # every 0.3 s
            os.kill(process.pid, signal.SIGSTOP)
            receive(sock, 0.2)  # what was already on its way
            assert receive(sock, 1.0) == []  # a stopped loop sends nothing: systemd would kill it
            os.kill(process.pid, signal.SIGCONT)
            assert "WATCHDOG=1" in receive(sock, 1.0)
            process.terminate()
            assert process.wait(10) == 0
            assert "STOPPING=1" in receive(sock, 1.0)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait(10)
