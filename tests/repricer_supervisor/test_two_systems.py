"""Two systems on one machine with one option, --run-dir (issue 21 item 7): the directory is created,
held by one launcher at a time, and the HTTP ports are chosen free when the defaults are taken;
``--api-port 0`` is a free port chosen at start; a port in use names the option to change."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from repricer_supervisor import launcher, preflight
from repricer_supervisor.plan import plan
from tests.helpers import REPO, wait_for


def test_a_port_is_chosen_free_only_when_asked(taken_port: int) -> None:
    assert preflight.choose_port("--api-port", "127.0.0.1", None, taken_port, private=False) == taken_port
    assert preflight.choose_port("--api-port", "127.0.0.1", taken_port, 8080, private=True) == taken_port  # as given
    # A private run never takes the default, even free: two runs started at once would both take it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    chosen = preflight.choose_port("--api-port", "127.0.0.1", None, free, private=True)
    assert chosen not in (0, free)
    assert preflight.choose_port("--api-port", "127.0.0.1", 0, taken_port, private=False) not in (0, taken_port)


def test_api_port_0_is_a_free_port_the_algorithm_is_told(tmp_path: Path) -> None:
    startup = launcher.parse_args(["--api-port", "0", "--no-dashboard"])
    port = startup.options.net.api_port
    assert port is not None and port > 0
    the_plan = plan(startup.options, t0=0.0, private_dir=str(tmp_path))
    api = the_plan.named("apiserver").argv
    assert api[api.index("--port") + 1] == str(port)
    worker = the_plan.named("algorithm").argv
    assert worker[worker.index("--api-url") + 1] == f"http://127.0.0.1:{port}"


def test_the_run_directory_is_created_private_and_held_by_one_launcher(tmp_path: Path) -> None:
    run_dir = tmp_path / "a" / "b"
    startup = launcher.parse_args(["--run-dir", str(run_dir)])  # its HTTP ports chosen free
    assert run_dir.is_dir() and stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert startup.options.ledger_db == str(run_dir / "ledger.sqlite3")
    lock = preflight.hold_run_dir(str(run_dir))
    try:
        with pytest.raises(preflight.Refusal, match=rf"--run-dir {run_dir}: in use by another launcher \(pid "
                                                    rf"{os.getpid()}\): give each system its own directory"):
            preflight.hold_run_dir(str(run_dir))
    finally:
        os.close(lock)
    os.close(preflight.hold_run_dir(str(run_dir)))  # released with its holder


def test_with_a_run_directory_the_http_ports_are_chosen_free(tmp_path: Path, taken_port: int) -> None:
    chosen = launcher.with_ports(launcher.parse_options(["--run-dir", str(tmp_path)]))
    assert chosen.net.api_port not in (None, 0, 8080) and chosen.dashboard.port not in (None, 0, 8081)
    given = launcher.with_ports(launcher.parse_options(["--run-dir", str(tmp_path), "--api-port", str(taken_port)]))
    assert given.net.api_port == taken_port  # a port given stays (and is refused at start if in use)
    plain = launcher.with_ports(launcher.parse_options([]))
    assert (plain.net.api_port, plain.dashboard.port) == (8080, 8081)  # the defaults


class Launched:
    """A launcher given only its --run-dir (and a fast tick), its output read as it comes."""

    def __init__(self, run_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "launcher.py", "--run-dir", str(run_dir), "--json", "--tick", "1", "--delay", "0.2"],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.decisions: list[str] = []
        self.log: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.decisions), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.log), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            into.append(line)

    def logged(self, prefix: str) -> str:
        return next(line.split(prefix, 1)[1].strip() for line in list(self.log) if prefix in line)

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait(10)
        for reader in self._readers:
            reader.join(10)
        return code


def test_two_launchers_on_one_machine_with_one_option_each(tmp_path: Path) -> None:
    """For real: two whole systems, each given only its own --run-dir, both decide; a third on the
    first's directory is refused in one line."""
    first, second = Launched(tmp_path / "one"), Launched(tmp_path / "two")
    try:
        wait_for(lambda: len(first.decisions) >= 5 and len(second.decisions) >= 5, timeout=90, interval=0.05)
        third = subprocess.run([sys.executable, "launcher.py", "--run-dir", str(tmp_path / "one"), "--duration", "1"],
                               cwd=REPO, capture_output=True, text=True, timeout=30)
        assert third.returncode == 2
        assert third.stderr.strip().endswith(f"error: --run-dir {tmp_path}/one: in use by another launcher (pid "
                                             f"{first.process.pid}): give each system its own directory"), third.stderr
    finally:
        codes = [first.stop(), second.stop()]
    assert codes == [0, 0], first.log[-20:] + second.log[-20:]
    assert first.logged("apiserver: ") != second.logged("apiserver: ")
    assert first.logged("dashboard: ") != second.logged("dashboard: ")
    assert not any("starting a new, empty database" in line for line in first.log + second.log)
    assert (tmp_path / "one" / "ledger.sqlite3").exists() and (tmp_path / "two" / "ledger.sqlite3").exists()
