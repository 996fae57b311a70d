"""The probes of actors started on their own (``python -m actors.<actor> --health-port``), as an
orchestrator sees them: a SIGSTOPped actor fails liveness within the launcher's bound; readiness
follows the peers; a StatefulSet pod's name gives a worker its index."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repricer_supervisor.policy import RestartPolicy
from tests.helpers import REPO, free_port, ipc_endpoint, wait_for

# The probe settings of deploy/kubernetes: every second, 1 s timeout, 3 misses.
PROBE_PERIOD = 1.0
PROBE_TIMEOUT = 1.0
FAILURE_THRESHOLD = 3


class Actor:
    """One actor process with its probe listener on a free loopback port."""

    def __init__(self, package: str, *args: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        with open(log, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", package, *args, "--health-port", str(self.port)], cwd=REPO,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **(env or {})})

    def get(self, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, dict[str, object] | str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode()
            return response.status, json.loads(body) if path != "/metrics" else body
        finally:
            conn.close()

    def probe(self, path: str) -> int | None:
        """The status, or None for a probe that failed to get one (refused, timed out), as the kubelet counts."""
        try:
            return self.get(path)[0]
        except OSError:
            return None

    def stop(self) -> int | None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGCONT)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@pytest.fixture
def actors(tmp_path: Path) -> Iterator[list[Actor]]:
    started: list[Actor] = []
    try:
        yield started
    finally:
        for actor in started:
            actor.stop()


def test_a_sigstopped_actor_fails_liveness_within_the_launchers_bound(actors: list[Actor], tmp_path: Path,
                                                                      ipc_dir: Path) -> None:
    scheduler = Actor("actors.scheduler", "--ticks-endpoint", ipc_endpoint(ipc_dir, "ticks"), "--tick", "0.2",
                      log=tmp_path / "scheduler.log")
    actors.append(scheduler)
    wait_for(lambda: scheduler.probe("/livez") == 200, timeout=20, interval=0.1)
    os.kill(scheduler.process.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    misses = 0
    while misses < FAILURE_THRESHOLD:  # the kubelet: a probe every period, each with its timeout
        began = time.monotonic()
        assert scheduler.probe("/livez") is None
        misses += 1
        time.sleep(max(0.0, PROBE_PERIOD - (time.monotonic() - began)))
    # Declared dead after 3 misses: ~3 s after the loop stopped, the launcher's hang bound (plus the
    # period the first probe may wait for; the machine's load cannot shorten or stretch a timeout much).
    bound = RestartPolicy().time_to_dead
    assert bound <= time.monotonic() - stopped < bound + PROBE_PERIOD + 1.0
    os.kill(scheduler.process.pid, signal.SIGCONT)
    wait_for(lambda: scheduler.probe("/livez") == 200, timeout=10, interval=0.1)
    assert scheduler.stop() == 0


def test_the_algorithm_is_ready_while_ticks_arrive(actors: list[Actor], tmp_path: Path, ipc_dir: Path) -> None:
    ticks = ipc_endpoint(ipc_dir, "ticks")
    algorithm = Actor("actors.algorithm", "--ticks-endpoint", ticks, "--data-endpoint", ipc_endpoint(ipc_dir, "data"),
                      "--ledger-endpoint", "", "--books", "B001", "--delay", "0", "--api-url", f"http://127.0.0.1:{free_port()}",
                      log=tmp_path / "algorithm.log")
    actors.append(algorithm)
    wait_for(lambda: algorithm.probe("/readyz") == 503, timeout=20, interval=0.1)
    assert algorithm.get("/readyz")[1] == {"actor": "algorithm", "ready": False,
                                          "reason": f"no tick received yet from {ticks}"}
    scheduler = Actor("actors.scheduler", "--ticks-endpoint", ticks, "--tick", "0.2", log=tmp_path / "scheduler.log")
    actors.append(scheduler)
    wait_for(lambda: algorithm.probe("/readyz") == 200, timeout=20, interval=0.1)  # the peer appeared
    assert scheduler.stop() == 0
    wait_for(lambda: algorithm.probe("/readyz") == 503, timeout=10, interval=0.1)  # and went away
    reason = algorithm.get("/readyz")[1]["reason"]  # type: ignore[index]
    assert isinstance(reason, str) and reason.startswith("no new tick for ")
    assert algorithm.probe("/livez") == 200  # not ready is not dead: nothing to restart
    assert algorithm.stop() == 0


def test_the_datamanager_is_ready_once_its_file_is_readable(actors: list[Actor], tmp_path: Path,
                                                           ipc_dir: Path) -> None:
    csv = tmp_path / "prices.csv"
    manager = Actor("actors.data_manager", "--data-endpoint", ipc_endpoint(ipc_dir, "data"), "--data-file", str(csv),
                    log=tmp_path / "dm.log")
    actors.append(manager)
    wait_for(lambda: manager.probe("/readyz") == 503, timeout=20, interval=0.1)
    reason = manager.get("/readyz")[1]["reason"]  # type: ignore[index]
    assert isinstance(reason, str) and reason.startswith("data file unavailable: ") and str(csv) in reason
    csv.write_text("timestamp,book_id,price\n2026-01-01T00:00:00Z,B001,10.00\n")
    wait_for(lambda: manager.probe("/readyz") == 200, timeout=10, interval=0.1)  # retried every second
    status, metrics = manager.get("/metrics")
    assert status == 200 and 'repricer_actor_ready{actor="datamanager"} 1' in str(metrics).splitlines()
    assert manager.stop() == 0


def test_a_pod_name_gives_the_worker_its_index(actors: list[Actor], tmp_path: Path, ipc_dir: Path) -> None:
    common = ("--ticks-endpoint", ipc_endpoint(ipc_dir, "ticks"), "--data-endpoint", ipc_endpoint(ipc_dir, "data"),
              "--ledger-endpoint", "", "--workers-total", "3", "--worker-from-env", "POD_NAME")
    worker = Actor("actors.algorithm", *common, log=tmp_path / "w.log", env={"POD_NAME": "algorithm-2"})
    actors.append(worker)
    wait_for(lambda: worker.probe("/livez") == 200, timeout=20, interval=0.1)
    assert worker.get("/livez")[1] == {"actor": "algorithm-2", "live": True}
    out = subprocess.run([sys.executable, "-m", "actors.algorithm", *common], cwd=REPO, capture_output=True,
                         text=True, timeout=30, env={**os.environ, "POD_NAME": "algorithm-3"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --worker-from-env POD_NAME: index 3 is not in 0..2 (--workers-total must match the number of workers)"]
