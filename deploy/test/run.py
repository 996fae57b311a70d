"""The container test: the image built from deploy/Containerfile, the system run from deploy/kubernetes
with ``podman kube play``, checked against the launcher on the same inputs. ``.ci/run`` runs it after
pytest, as root, after starting its build (:mod:`deploy.test.build`, ``run.sh --prepare``) beside
pytest; what that built is reused here.

What it does, in order (each check prints one line, each phase its time; the last line is
``deploy: N passed, 0 failed``):

1. the tools (podman, mmdebstrap) and the base image: Debian's packages (mmdebstrap, cached as a
   tarball in ``--cache``), imported as ``localhost/debian-py:bookworm-<its recipe's hash>``: no image
   registry is reachable here;
2. the image, FROM that base, with the locked wheels downloaded on this host (hashes checked), beside 1;
3. the manifests as ``kubectl apply -k`` reads them, plus the test's patches (a 1 s tick, its own
   image, one worker, a 1 s config poll), rendered for podman (:mod:`deploy.test.kube` says how and
   why each rule), and the CurveZMQ keys as the Secrets' folders (a key pair per role, the authorized keys);
4. the launcher on the same CSV, books and config, beside it, for the reference decisions;
5. checks: every pod ready; decisions flow and match the launcher's; an actor's container killed is
   restarted by the engine while the workers keep deciding; a paused container fails liveness within
   the launcher's bound; the Dashboard in its own pod serves a book's history, read from the Ledger over
   the network; a second worker splits the pairs with none decided twice; a ConfigMap update
   is reloaded; every container stops on SIGTERM within its grace period, exit code 0;
6. measures: the image's size, the summed RSS of the actors in containers and of the launcher's run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from deploy.test import kube
from deploy.test.build import (
    BASE_IMAGE,
    IMAGE,
    build_image,
    default_cache,
    download_wheels,
    ensure_base,
    ensure_tools,
    image_size,
    phase,
    podman,
    run,
    say,
)
from tests.configmap import ConfigMapVolume
from transport.roles import ALGORITHM, DASHBOARD, DATA_MANAGER, LEDGER, SCHEDULER
from transport.security import keygen

REPO = Path(__file__).resolve().parents[2]
NETWORK = "repricer-ci"
APP_UID = 10001  # the image's user (deploy/Containerfile), the manifests' fsGroup
HEALTH_PORT = 9100
TICK = 1.0
LIVENESS_BOUND = 3.0  # periodSeconds 1 x failureThreshold 3: the launcher's hang bound

POD_ROLES = (SCHEDULER, DATA_MANAGER, LEDGER, ALGORITHM, DASHBOARD)  # the pods that speak ZeroMQ: a Secret each


def wait(what: str, predicate: Callable[[], object], timeout: float, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- the system in podman ---------------------------------------------------------------------------


def secret_folders(work: Path) -> dict[str, Path]:
    """The Secrets of docs/kubernetes.md, as folders of files: each role's key pair, and the authorized
    public keys; readable by the app's group only, as ``defaultMode: 0440`` with ``fsGroup: 10001``
    makes them."""
    keys = keygen(work / "keys")
    folders = {f"repricer-curve-{role}": [keys / f"{role}.key", keys / f"{role}.key_secret"] for role in POD_ROLES}
    folders["repricer-curve-authorized"] = list((keys / "authorized").iterdir())
    out: dict[str, Path] = {}
    for name, files in folders.items():
        folder = work / "secrets" / name
        folder.mkdir(parents=True)
        for source in files:
            target = folder / source.name
            shutil.copy(source, target)
            os.chown(target, 0, APP_UID)
            target.chmod(0o440)
        os.chown(folder, 0, APP_UID)
        folder.chmod(0o750)
        out[name] = folder
    return out


def patched(docs: list[kube.Doc], workers: int) -> list[kube.Doc]:
    """The test's patches, as kustomize patches would be: its image, a 1 s tick, ``workers`` workers
    (replicas and --workers-total together), a 1 s config poll."""
    for doc in docs:
        for container in kube.containers(doc):
            container["image"], container["imagePullPolicy"] = IMAGE, "Never"
    kube.set_arg(kube.containers(kube.find(docs, "Deployment", "scheduler"))[0], "--tick", f"{TICK:g}")
    algorithm = kube.find(docs, "StatefulSet", "algorithm")
    algorithm["spec"]["replicas"] = workers
    worker = kube.containers(algorithm)[0]
    kube.set_arg(worker, "--workers-total", str(workers))
    kube.set_arg(worker, "--config-poll", "1")
    return docs


@dataclass
class System:
    work: Path
    secrets: dict[str, Path]
    logs: dict[str, list[str]] = field(default_factory=dict)  # stdout of containers removed, kept

    def manifests(self, workers: int) -> list[kube.Doc]:
        return kube.render_for_podman(patched(kube.load(REPO / "deploy/kubernetes"), workers), self.secrets)

    def play(self, docs: list[kube.Doc], name: str) -> None:
        path = self.work / f"{name}.yaml"
        path.write_text(kube.dump(docs), encoding="utf-8")
        podman("kube", "play", "--network", NETWORK, str(path), timeout=300)

    def ip(self, container: str) -> str:
        return podman("inspect", container, "--format",
                      f"{{{{(index .NetworkSettings.Networks \"{NETWORK}\").IPAddress}}}}").strip()

    def probe(self, container: str, path: str, port: int = HEALTH_PORT, timeout: float = 1.0) -> int | None:
        """The probe's status, asked as the kubelet does (the pod's address, a 1 s timeout); None if none came."""
        conn = http.client.HTTPConnection(self.ip(container), port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        except OSError:
            return None
        finally:
            conn.close()

    def wait_ready(self, container: str, port: int = HEALTH_PORT, timeout: float = 90) -> None:
        try:
            wait(f"{container} ready", lambda: self.probe(container, "/readyz", port) == 200, timeout)
        except AssertionError as exc:  # CI keeps only this output: say why it is not ready
            try:
                reason = self.get(container, "/readyz", port)
            except OSError as error:
                reason = f"no answer ({error})"
            log = run("podman", "logs", "--tail", "15", container, check=False, quiet=True)
            raise AssertionError(f"{exc}; /readyz: {reason.strip()[:300]}; restarts: "
                                 f"{self.restarts(container)}; its log ends:\n{log.stderr[-2500:]}") from None

    def get(self, container: str, path: str, port: int = HEALTH_PORT) -> str:
        conn = http.client.HTTPConnection(self.ip(container), port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def decisions(self, container: str) -> list[dict[str, Any]]:
        lines = self.logs.get(container, []) + _stdout(container)
        return [json.loads(line) for line in lines if line.startswith("{")]

    def keep_logs(self, container: str) -> None:
        self.logs[container] = self.logs.get(container, []) + _stdout(container)

    def ledger_ticks(self, book: str, strategy: str) -> set[int]:
        """The ticks the Ledger keeps for a pair, read with its own command in its container."""
        lines = podman("exec", "ledger-ledger", "python", "-m", "actors", "ledger", "history", "--book", book,
                       "--strategy", strategy, "--format", "json", "--db", "/var/lib/repricer/ledger.sqlite3")
        return {json.loads(line)["tick"] for line in lines.splitlines() if line.startswith("{")}

    def restarts(self, container: str) -> int:
        return int(podman("inspect", container, "--format", "{{.RestartCount}}").strip())

    def pid(self, container: str) -> int:
        return int(podman("inspect", container, "--format", "{{.State.Pid}}").strip())


def _stdout(container: str) -> list[str]:
    """A container's stdout (its decisions); its stderr (the log) is left out."""
    result = subprocess.run(["podman", "logs", container], capture_output=True, text=True, timeout=60)
    return result.stdout.splitlines()


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


# --- the reference: the launcher on the same inputs ---------------------------------------------------


@dataclass
class Reference:
    processes: list[subprocess.Popen[str]]  # the launcher, then the APIServer it uses
    out: Path
    rss_samples: list[int] = field(default_factory=list)

    @property
    def launcher(self) -> subprocess.Popen[str]:
        return self.processes[0]

    def sample_rss(self) -> dict[str, int]:
        """KiB per process of the run, by process name (the launcher's actors name themselves)."""
        by_name: dict[str, int] = {}
        for pid in (p for process in self.processes for p in tree(process.pid)):
            with contextlib.suppress(OSError):
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                by_name[name] = by_name.get(name, 0) + rss_kib([pid])
        self.rss_samples.append(sum(by_name.values()))
        return by_name

    def decisions(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


def start_reference(work: Path, config: Path, seconds: float, first_id_parity: int) -> Reference:
    """The launcher on the same CSV, books and config, with every actor but the APIServer, which runs on
    its own: its first id has ``first_id_parity`` (a persisted high-water mark ahead of the clock), so
    that its ids' parities, the mock's sold flags, follow the containers' tick by tick."""
    run_dir, out, api_port = work / "launcher", work / "launcher.out", _free_port()
    run_dir.mkdir(mode=0o700)  # a --run-dir others may write in is refused (whatever the umask)
    first = time.time_ns() // 1000 + 10**9
    first += (first - first_id_parity) % 2
    state = work / "api-state.json"
    state.write_text(json.dumps({"next_block_end": first}), encoding="utf-8")
    with open(out, "w") as stdout, open(work / "launcher.err", "w") as stderr:
        api = subprocess.Popen([sys.executable, "-m", "actors.api_server", "--port", str(api_port), "--state-file",
                                str(state)], cwd=REPO, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                               text=True)
        launcher = subprocess.Popen(
            [sys.executable, "launcher.py", "--data-file", "data/data.csv", "--config", str(config),
             "--tick", f"{TICK:g}", "--json", "--duration", f"{seconds:g}", "--run-dir", str(run_dir),
             "--run", "scheduler,datamanager,ledger,algorithm,dashboard", "--api-url", f"http://127.0.0.1:{api_port}",
             "--dashboard-port", str(_free_port())],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, text=True)
    return Reference([launcher, api], out)


def first_id_parity(decisions: list[dict[str, Any]], pairs: int) -> int:
    """The parity of the first id registered in the newest tick in which every pair decided: with the
    same number of registrations every tick, the parity of each tick's first id stays the same."""
    ticks: dict[int, list[int]] = {}
    for decision in decisions:
        ticks.setdefault(decision["tick"], []).append(decision["request_id"])
    full = [tick for tick, ids in ticks.items() if len(ids) == pairs]
    return min(ticks[max(full)]) % 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- checks ---------------------------------------------------------------------------------------------


Key = tuple[str, str, int]


def by_key(decisions: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(d["book"], d["strategy"], d["tick"]): d for d in decisions}


def rule_factors(config_text: str) -> dict[tuple[str, bool], Decimal]:
    """(strategy, sold) -> the factor the config gives, read here with tomllib (not the project's code)."""
    strategies = tomllib.loads(config_text)["strategies"]
    return {(name, sold): Decimal(s["sold_factor" if sold else "unsold_factor"])
            for name, s in strategies.items() for sold in (True, False)}


def compare(containers: list[dict[str, Any]], launcher: list[dict[str, Any]],
            factors: dict[tuple[str, bool], Decimal]) -> tuple[int, int]:
    """For every (book, strategy, tick) both decided: the same window and average. With the same sold,
    the same price; either way, each side's rule price is avg x its factor, rounded half-up to cents.
    (The APIServers' ids, so the sold flags, differ between two runs.) Returns (compared, same sold)."""
    ours, theirs = by_key(containers), by_key(launcher)
    common = sorted(set(ours) & set(theirs))
    same_sold = 0
    for key in common:
        a, b = ours[key], theirs[key]
        assert a["prices"] == b["prices"] and Decimal(a["avg_comp_price"]) == Decimal(b["avg_comp_price"]), (a, b)
        for side in (a, b):
            expected = (Decimal(side["avg_comp_price"]) * factors[side["strategy"], side["sold"]]).quantize(
                Decimal("0.01"), ROUND_HALF_UP)
            assert Decimal(side["rule_price"]) == expected, (side, expected)
        if a["sold"] == b["sold"]:
            same_sold += 1
            assert [a[k] for k in ("price", "rule_price", "guardrail")] == [b[k] for k in ("price", "rule_price",
                                                                             "guardrail")], (a, b)
    return len(common), same_sold


def owner(book: str, strategy: str, workers: int) -> int:
    """Worker of a pair, computed here from the rule (crc32 of book NUL strategy), not the project's code."""
    return zlib.crc32(f"{book}\0{strategy}".encode()) % workers


@dataclass
class Results:
    passed: int = 0
    failed: int = 0

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            self.failed += 1
            say(f"FAILED {name}: {exc!r}"[:3000])
            raise
        self.passed += 1
        say(f"ok {name} ({time.monotonic() - started:.1f}s)")


def cleanup(work: Path | None) -> None:
    for path in sorted((work or Path("/nonexistent")).glob("*.yaml")):
        run("podman", "kube", "down", str(path), check=False, quiet=True, timeout=120)
    # By name too: a run killed while removing a pod can leave it with no containers and off the network.
    ours = {d["metadata"]["name"] for d in kube.render_for_podman(
        patched(kube.load(REPO / "deploy/kubernetes"), workers=2), defaultdict(lambda: Path("/nonexistent")))
        if d["kind"] == "Pod"}
    on_network = podman("pod", "ps", "--filter", f"network={NETWORK}", "--format", "{{.Name}}", check=False).split()
    for pod in sorted(set(on_network) | ours & set(podman("pod", "ps", "--format", "{{.Name}}", check=False).split())):
        run("podman", "pod", "rm", "-f", "-t", "2", pod, check=False, quiet=True, timeout=120)
    run("podman", "network", "rm", "-f", NETWORK, check=False, quiet=True)
    for volume in ("repricer-data", "repricer-config", "db-ledger-0"):
        run("podman", "volume", "rm", "-f", volume, check=False, quiet=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=default_cache(),
                        help="where the base tarball and the wheels are kept between runs (never committed)")
    parser.add_argument("--rebuild-base", action="store_true", help="build the base image anew")
    parser.add_argument("--keep", action="store_true", help="leave the pods running (to look at them)")
    args = parser.parse_args(argv)
    results = Results()
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="repricer-deploy-"))
    pool = ThreadPoolExecutor(1)
    try:
        wheels = pool.submit(download_wheels, args.cache)  # beside the tools and the base: the network's part
        with results.check("base image"):
            ensure_tools()
            cleanup(None)  # what a killed run left
            ensure_base(args.cache, args.rebuild_base)
        with results.check("image built"):
            seconds = build_image(wheels.result(), work)
            size, base = image_size(IMAGE), image_size(BASE_IMAGE)
            say(f"image {IMAGE}: {size / 1e6:.0f} MB ({(size - base) / 1e6:.0f} MB over its base's "
                f"{base / 1e6:.0f} MB), built in {seconds:.0f}s")
        exercise(System(work, secret_folders(work)), results)
    except Exception:
        if results.failed == 0:
            results.failed += 1
        import traceback

        traceback.print_exc()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if not args.keep:
            cleanup(work)
            shutil.rmtree(work, ignore_errors=True)
    say(f"took {time.monotonic() - began:.0f}s")
    print(f"deploy: {results.passed} passed, {results.failed} failed", flush=True)
    return 1 if results.failed else 0


def exercise(system: System, results: Results) -> None:
    work = system.work
    docs = system.manifests(workers=1)
    config_map = kube.find(docs, "ConfigMap", "repricer-config")
    config = ConfigMapVolume(work / "config")
    config.write(config_map["data"])
    with phase("kube play"):
        podman("network", "create", NETWORK)
        system.play([d for d in docs if d["kind"] == "PersistentVolumeClaim"], "claims")
        data = Path(podman("volume", "inspect", "repricer-data", "--format", "{{.Mountpoint}}").strip())
        shutil.copy(REPO / "data" / "data.csv", data / "data.csv")  # as an operator would copy it in
        system.play([d for d in docs if d["kind"] != "PersistentVolumeClaim"], "system")
    actors = {"scheduler-scheduler": HEALTH_PORT, "datamanager-datamanager": HEALTH_PORT,
              "apiserver-apiserver": HEALTH_PORT, "ledger-ledger": HEALTH_PORT, "dashboard-dashboard": HEALTH_PORT,
              "algorithm-0-algorithm": HEALTH_PORT}

    with results.check("every pod ready (/readyz), non-root, its probes answering"):
        for container, port in actors.items():
            system.wait_ready(container, port)
        for container in actors:
            user = podman("exec", container, "python", "-c", "import os; print(os.getuid())").strip()
            assert user == str(APP_UID), (container, user)

    with results.check("decisions flow, and match the launcher's on the same inputs"):
        worker = "algorithm-0-algorithm"
        wait("3 ticks decided", lambda: len({d["tick"] for d in system.decisions(worker)}) >= 3, 60)
        pairs = len({(d["book"], d["strategy"]) for d in system.decisions(worker)})
        # --duration bounds the launcher's run; it is stopped (SIGTERM, a clean stop: exit code 0) as soon
        # as both sides decided 6 ticks of every pair, one more than the comparison below needs.
        reference = start_reference(work, config.root / "repricer.toml", 90,
                                    first_id_parity(system.decisions(worker), pairs))
        try:
            wait("the launcher's decisions", lambda: len(reference.decisions()) >= 3 * pairs, 60)
            launcher_each = reference.sample_rss()
            containers_each = {c: rss_kib([system.pid(c)]) for c in actors}
            wait("6 ticks of every pair decided by both", lambda: len(
                set(by_key(system.decisions(worker))) & set(by_key(reference.decisions()))) >= 6 * pairs, 60, 1.0)
            assert reference.launcher.poll() is None, "the launcher stopped before its SIGTERM"
        finally:
            reference.stop()
        assert reference.launcher.returncode == 0, (work / "launcher.err").read_text()[-2000:]
        metrics = system.get(worker, "/metrics")
        assert 'repricer_decisions_total{actor="algorithm"}' in metrics, metrics[:500]  # one worker: no index
        compared, same_sold = compare(system.decisions(worker), reference.decisions(),
                                      rule_factors(config_map["data"]["repricer.toml"]))
        assert compared >= 30 and same_sold >= compared // 2, (compared, same_sold)  # 5 ticks of 6 pairs at least
        say(f"{compared} (book, strategy, tick) decided by both: the same windows, averages and rule; "
            f"{same_sold} with the same sold flag, each at the same price")
        say(f"summed RSS: {sum(containers_each.values()) / 1024:.0f} MiB for the 6 actors in containers (one worker), "
            f"{sum(launcher_each.values()) / 1024:.0f} MiB for the launcher and its 6 actors")
        say("RSS in containers (MiB): " + ", ".join(f"{c.split('-')[-1]} {kib / 1024:.1f}"
                                                 for c, kib in containers_each.items()))
        say("RSS under the launcher (MiB): " + ", ".join(f"{name} {kib / 1024:.1f}"
                                                      for name, kib in sorted(launcher_each.items())))

    with results.check("the Dashboard, in a pod of its own, serves a book's history read from the Ledger"):
        def shown() -> list[int]:
            book = json.loads(system.get("dashboard-dashboard", "/api/book?id=B001&strategy=default", 8081))
            return [d["tick"] for d in book.get("decisions", [])]

        wait("3 decisions of B001 on the Dashboard", lambda: len(shown()) >= 3, 30, 1.0)
        ticks = shown()
        assert ticks == sorted(ticks, reverse=True), ticks  # newest first
        def of_b001() -> set[int]:
            return {d["tick"] for d in system.decisions("algorithm-0-algorithm")
                    if (d["book"], d["strategy"]) == ("B001", "default")}

        # podman logs, under load, may come back short: read again before concluding
        wait("the ticks shown among the worker's decisions", lambda: set(ticks) <= of_b001(), 10, 1.0)
        metrics = system.get("dashboard-dashboard", "/metrics")
        assert 'repricer_dashboard_db_queries_total{actor="dashboard"}' in metrics, metrics[:500]

    with results.check("a killed container is restarted by the engine while the workers keep deciding"):
        before, pid = system.restarts("ledger-ledger"), system.pid("ledger-ledger")
        ticks_before = {d["tick"] for d in system.decisions("algorithm-0-algorithm")}
        os.kill(pid, signal.SIGKILL)  # a crash: podman kill would count as stopped on purpose, not restarted
        wait("the Ledger restarted", lambda: system.restarts("ledger-ledger") > before, 60)
        wait("the Ledger ready again", lambda: system.probe("ledger-ledger", "/readyz") == 200, 60)
        assert system.pid("ledger-ledger") != pid
        wait("3 more ticks decided", lambda: len({d["tick"] for d in system.decisions("algorithm-0-algorithm")}
                                                - ticks_before) >= 3, 30)
        decided = sorted({d["tick"] for d in system.decisions("algorithm-0-algorithm")} - ticks_before)
        assert decided == list(range(decided[0], decided[0] + len(decided))), decided  # no tick left out
        # What was decided while the Ledger was down reached it once it was back (the worker's outbox).
        book, strategy = "B001", "default"
        wanted = {d["tick"] for d in system.decisions("algorithm-0-algorithm")
                  if (d["book"], d["strategy"]) == (book, strategy) and d["tick"] <= decided[-1]}
        wait("every decision in the Ledger", lambda: wanted <= system.ledger_ticks(book, strategy), 30, 1.0)

    with results.check("a paused container fails liveness within the launcher's bound, then recovers"):
        assert system.probe("scheduler-scheduler", "/livez") == 200
        podman("pause", "scheduler-scheduler")
        paused = time.monotonic()
        misses = 0
        try:
            while misses < 3:
                began = time.monotonic()
                assert system.probe("scheduler-scheduler", "/livez") is None
                misses += 1
                time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
            took = time.monotonic() - paused
        finally:
            podman("unpause", "scheduler-scheduler")
        assert LIVENESS_BOUND <= took < LIVENESS_BOUND + 2, took
        wait("the Scheduler live again", lambda: system.probe("scheduler-scheduler", "/livez") == 200, 10)

    with results.check("a second worker: the pairs split, none decided twice"):
        system.keep_logs("algorithm-0-algorithm")
        # Scaled as docs/kubernetes.md says: the workers stop (gracefully), then all start with the new count.
        podman("pod", "stop", "-t", "15", "algorithm-0", timeout=60)
        podman("pod", "rm", "algorithm-0")
        alone = max(d["tick"] for d in system.decisions("algorithm-0-algorithm"))  # the single worker's last tick
        system.play([d for d in system.manifests(workers=2)
                     if d["kind"] == "ConfigMap" or d["metadata"]["name"].startswith("algorithm-")], "workers")
        workers = ("algorithm-0-algorithm", "algorithm-1-algorithm")
        for worker in workers:
            system.wait_ready(worker)
        wait("both workers deciding, 4 ticks each", lambda: all(
            len({d["tick"] for d in system.decisions(w) if d["tick"] > alone}) >= 4 for w in workers), 60)
        everything = [d for w in workers for d in system.decisions(w)]
        keys = [(d["book"], d["strategy"], d["tick"]) for d in everything]  # one Scheduler run throughout
        assert len(keys) == len(set(keys)), "a (book, strategy, tick) decided twice"
        shares = [{(d["book"], d["strategy"]) for d in system.decisions(w) if d["tick"] > alone} for w in workers]
        every_pair = {(d["book"], d["strategy"]) for d in everything}
        assert shares[0] and shares[1] and not shares[0] & shares[1] and shares[0] | shares[1] == every_pair, shares
        assert all(owner(book, strategy, 2) == index for index, share in enumerate(shares) for book, strategy in share)
        say(f"worker 0 prices {sorted(shares[0])}, worker 1 {sorted(shares[1])}")

    with results.check("a ConfigMap update is reloaded by every worker"):
        volume = ConfigMapVolume(Path(podman("volume", "inspect", "repricer-config", "--format",
                                             "{{.Mountpoint}}").strip()))
        files = dict(config_map["data"])
        files["books.txt"] += "B005\n"
        volume.write(files)  # as the kubelet swaps a ConfigMap volume's files
        wait("B005 decided", lambda: any(d["book"] == "B005" for w in ("algorithm-0-algorithm", "algorithm-1-algorithm")
                                         for d in system.decisions(w)), 30)
        for worker in ("algorithm-0-algorithm", "algorithm-1-algorithm"):
            log = run("podman", "logs", worker).stderr
            assert "reloaded" in log, log[-1000:]

    with results.check("every container stops on SIGTERM within its grace period, exit code 0"):
        # The workers first, then the others, each group at once: a stop that loses nothing (the workers'
        # last decisions reach a Ledger still running); each pod's stop is timed on its own.
        pods = [d for d in system.manifests(workers=2) if d["kind"] == "Pod"]
        worker_pods = [pod for pod in pods if pod["metadata"]["name"].startswith("algorithm-")]

        def stop(pod: kube.Doc) -> tuple[float, float]:
            """When the stop was asked (wall clock, as the engine's exit times) and how long the engine's
            whole stop took (its clean-up after the exits included)."""
            asked, started_at = time.time(), time.monotonic()
            podman("pod", "stop", "-t", "60", pod["metadata"]["name"], timeout=120)
            return asked, time.monotonic() - started_at

        stopped: dict[str, tuple[float, float]] = {}
        with ThreadPoolExecutor(len(pods)) as stopping:
            for group in (worker_pods, [pod for pod in pods if pod not in worker_pods]):
                stopped.update(zip((pod["metadata"]["name"] for pod in group), stopping.map(stop, group), strict=True))
        exited: dict[str, float] = {}
        for pod in pods:
            name, grace = pod["metadata"]["name"], pod["spec"]["terminationGracePeriodSeconds"]
            for spec in kube.containers(pod):
                code, finished = podman("inspect", f"{name}-{spec['name']}", "--format",
                                        "{{.State.ExitCode}} {{.State.FinishedAt.UnixNano}}").split()
                assert code == "0", (name, spec["name"], code)
                # The grace period runs from SIGTERM to the container's exit, as Kubernetes counts it (the
                # engine's clean-up after the exit, part of `pod stop`'s time, is not the program's).
                exited[name] = max(exited.get(name, 0.0), int(finished) / 1e9 - stopped[name][0])
            assert exited[name] < grace, (name, exited[name], grace, stopped[name][1])
        say("exited after SIGTERM in (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in exited.items())
            + "; the engine's whole stop: " + ", ".join(f"{name} {took:.1f}" for name, (_, took) in stopped.items()))


if __name__ == "__main__":
    sys.exit(main())
