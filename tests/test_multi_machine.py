"""Every actor started by hand, as it would be on separate machines: tcp endpoints on 127.0.0.1,
CurveZMQ keys, no launcher. And a peer with the wrong key gets nothing."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
import zmq.auth

from actors.algorithm.clients.data_manager import LastPricesClient, RequestFailed, RequestPolicy
from bench.driver import LauncherRun
from tests.harness import check_decision, read_points, write_csv
from tests.helpers import REPO, free_port, run_async, wait_for
from transport import protocol
from transport.protocol import Heartbeat
from transport.roles import ALGORITHM, DASHBOARD, HEARTBEAT, LAUNCHER, ROLES
from transport.security import Keys, Security, SecurityError, keygen
from transport.sockets import Sockets


class Actor:
    """One actor process started by hand; its stdout and stderr collected line by line."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", f"actors.{module}", *args], cwd=REPO,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.changed = threading.Condition()
        for stream, sink in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    def _read(self, stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self.changed:
                sink.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``predicate`` holds, looked at again on each line the process prints."""
        with self.changed:
            wait_for(predicate, timeout, timeout, what, pause=self.changed.wait,
                     details=lambda: "stderr:\n" + "\n".join(self.err[-20:]))

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return keygen(tmp_path / "keys")


def test_actors_started_by_hand_over_tcp_with_curve(tmp_path: Path, keys: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=100)
    ticks, data, api = (f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}", free_port())
    secure = ["--keys", str(keys)]
    actors = [
        Actor("data_manager", "--data-endpoint", data, "--data-file", str(csv_path), *secure),
        Actor("api_server", "--port", str(api), *secure),
        Actor("algorithm", "--ticks-endpoint", ticks, "--data-endpoint", data, "--api-url", f"http://127.0.0.1:{api}",
              "--books", "A,B", "--delay", "0", "--json", "--spool-dir", str(tmp_path / "spool"), *secure),
        Actor("scheduler", "--ticks-endpoint", ticks, "--tick", "0.2", *secure),
    ]
    algorithm = actors[2]
    try:
        algorithm.wait(lambda: len(algorithm.out) >= 6, 30, "six decisions")
    finally:
        codes = [actor.stop() for actor in actors]
    assert codes == [0, 0, 0, 0]
    points = read_points(csv_path)
    decisions = [json.loads(line) for line in algorithm.out]
    for decision in decisions:
        check_decision(decision, points)
    assert {d["book"] for d in decisions} == {"A", "B"}


def test_binding_a_public_address_needs_keys_or_insecure() -> None:
    result = subprocess.run([sys.executable, "-m", "actors.data_manager", "--data-endpoint", "tcp://0.0.0.0:0"],
                            cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "refusing to bind tcp://0.0.0.0:0 without CURVE keys" in result.stderr


def test_the_launcher_refuses_a_public_endpoint_without_keys() -> None:
    result = subprocess.run([sys.executable, "launcher.py", "--ticks-endpoint", "tcp://0.0.0.0:5599"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "refusing to bind tcp://0.0.0.0:5599 without CURVE keys" in result.stderr


def ask(keys: Keys, endpoint: str) -> str:
    """One request with these client keys: 'ok' or why it failed."""

    async def body() -> str:
        ctx = zmq.asyncio.Context()
        client = LastPricesClient(Sockets(ctx, Security(keys)), [endpoint], RequestPolicy(timeout=0.5, retries=1))
        receiver = asyncio.create_task(client.run())
        try:
            await client.last_prices("A", 0, 5)
            return "ok"
        except RequestFailed as exc:
            return str(exc)
        finally:
            receiver.cancel()
            client.close()
            ctx.destroy(linger=0)

    return run_async(body(), timeout=20)


def test_a_peer_with_a_wrong_key_gets_nothing(tmp_path: Path, keys: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    beats = f"ipc://{tmp_path}/hb.sock"
    sync_ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    inbox = sync_ctx.socket(zmq.PULL)
    inbox.setsockopt(zmq.RCVTIMEO, 10_000)
    Security(Keys.load(keys, LAUNCHER)).secure_server(inbox, beats, True, HEARTBEAT)  # a supervisor with keys
    inbox.bind(beats)
    manager = Actor("data_manager", "--data-endpoint", endpoint, "--data-file", str(csv_path), "--keys", str(keys),
                    "--heartbeat-endpoint", beats, "--heartbeat-interval", "0.1")
    # An intruder who knows the server's public key but whose own key is not authorized...
    intruder = tmp_path / "intruder"
    shutil.copytree(keys, intruder)
    zmq.auth.create_certificates(intruder, ALGORITHM)  # a new pair of its own, not in authorized/
    # ...and one who has a whole other key directory.
    stranger = keygen(tmp_path / "stranger")
    try:
        manager.wait(lambda: any("serving" in line for line in manager.err), 20, "the DataManager to bind")
        # The rightful client is served (asked again while a loaded machine makes the first handshake slow).
        wait_for(lambda: ask(Keys.load(keys, ALGORITHM), endpoint) == "ok", 20, 0.1, "the rightful client served")
        assert ask(Keys.load(intruder, ALGORITHM), endpoint) != "ok"
        manager.wait(lambda: any("refused a CURVE client: a key not in the authorized folder, on the data socket"
                                 in line for line in manager.err), 10, "the refusal log")
        # An authorized key of another role: the DataManager serves the Algorithm's key only (issue 20).
        assert ask(Keys.load(keys, DASHBOARD), endpoint) != "ok"
        manager.wait(lambda: any("refused a CURVE client: a key of role dashboard on the data socket, which admits "
                                 "algorithm only" in line for line in manager.err), 10, "the role's refusal log")
        assert ask(Keys.load(stranger, ALGORITHM), endpoint) != "ok"
        wait_for(lambda: ask(Keys.load(keys, ALGORITHM), endpoint) == "ok", 20, 0.1, "the rightful client still served")
        refusals = 0
        while refusals < 1:  # the refusal is counted too, in the counters the supervisor receives
            refusals = protocol.decode_as(inbox.recv(), Heartbeat).counters.get("curve_refusals", 0)
    finally:
        assert manager.stop() == 0
        inbox.close(linger=0)
        sync_ctx.term()


def test_authorized_keys_may_live_in_their_own_folder(tmp_path: Path, keys: Path) -> None:
    """As two Kubernetes Secrets give them (a Secret's volume holds no subfolder): the key pairs in one
    folder, the authorized clients' public keys in another (``--authorized-keys``)."""
    pairs, authorized = tmp_path / "pairs", tmp_path / "authorized"
    shutil.copytree(keys, pairs)
    shutil.move(pairs / "authorized", authorized)
    with pytest.raises(SecurityError, match=r"no folder of authorized keys at .*/pairs/authorized: re-run"):
        Keys.load(pairs, ALGORITHM)
    with pytest.raises(SecurityError, match=r"no folder of authorized keys at /nowhere$"):
        Keys.load(pairs, ALGORITHM, "/nowhere")
    csv_path = write_csv(tmp_path / "prices.csv")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    manager = Actor("data_manager", "--data-endpoint", endpoint, "--data-file", str(csv_path), "--keys", str(pairs),
                    "--authorized-keys", str(authorized))
    stranger = tmp_path / "stranger"
    shutil.copytree(pairs, stranger)
    zmq.auth.create_certificates(stranger, ALGORITHM)  # a pair not in the authorized folder
    try:
        manager.wait(lambda: any("serving" in line for line in manager.err), 20, "the DataManager to bind")
        wait_for(lambda: ask(Keys.load(pairs, ALGORITHM, authorized), endpoint) == "ok", 20, 0.1, "a client served")
        assert ask(Keys.load(stranger, ALGORITHM, authorized), endpoint) != "ok"
    finally:
        assert manager.stop() == 0


def test_keygen_command(tmp_path: Path) -> None:
    target = tmp_path / "k"
    result = subprocess.run([sys.executable, "-m", "transport.security", "keygen", str(target)], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    # One pair per role, every public key authorized in its role, the secrets private.
    loaded = Keys.load(target, ALGORITHM)
    assert sorted(loaded.roles.values()) == sorted(ROLES) and len(set(loaded.servers.values())) == len(ROLES)
    assert all((target / f"{role}.key_secret").stat().st_mode & 0o077 == 0 for role in ROLES)
    again = subprocess.run([sys.executable, "-m", "transport.security", "keygen", str(target)], cwd=REPO,
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 2 and "already holds keys" in again.stderr


def test_one_launcher_per_machine_over_tcp_with_curve(tmp_path: Path, keys: Path) -> None:
    """Three launchers as on three machines: one runs the Scheduler, DataManager and APIServer; the
    other two run two of the system's four Algorithm workers each."""
    csv_path = tmp_path / "prices.csv"
    subprocess.run([sys.executable, "data/generate.py", "--books", "8", "--rows", "200", "--seed", "5", "-o",
                    str(csv_path)], cwd=REPO, check=True, timeout=30)
    books = {f"B{i:03}" for i in range(1, 9)}
    ticks, data, api = (f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}", free_port())
    shared = ["--keys", str(keys), "--ticks-endpoint", ticks, "--data-endpoint", data, "--tick", "0.2",
              "--delay", "0", "--books", ",".join(sorted(books))]
    infra = LauncherRun([*shared, "--run", "scheduler,datamanager,apiserver", "--api-port", str(api),
                         "--data-file", str(csv_path)])
    # No Ledger runs here: the workers keep their decisions in a spool of the test's own (not the project's).
    workers = [LauncherRun([*shared, "--run", "algorithm", "--api-url", f"http://127.0.0.1:{api}", "--workers", "2",
                            "--workers-total", "4", "--worker-offset", str(offset), "--spool-dir",
                            str(tmp_path / "spool")])
               for offset in (0, 2)]
    try:
        infra.wait_for_actors(["scheduler", "datamanager", "apiserver"])
        for run, names in zip(workers, (["algorithm-0", "algorithm-1"], ["algorithm-2", "algorithm-3"]),
                              strict=True):
            run.wait_for_actors(names)
        for run in workers:
            run.wait_decisions(6, timeout=30)
        # A worker starts a little after its launcher's first: six decisions may not yet cover its books.
        wait_for(lambda: set().union(*({d["book"] for d in run.decisions()} for run in workers)) == books, 30, 0.1,
                 "every book decided on one machine or the other")
        assert all(run.stop() == 0 for run in workers) and infra.stop() == 0
    finally:
        for run in (*workers, infra):
            run.kill_everything()
    shares = [{d["book"] for d in run.decisions()} for run in workers]
    assert shares[0] and shares[1] and not shares[0] & shares[1]  # each pair owned by one machine
    assert shares[0] | shares[1] == books
    points = read_points(csv_path)
    for run in workers:
        for decision in run.decisions():
            check_decision(decision, points)
