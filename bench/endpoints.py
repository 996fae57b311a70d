"""What the private default endpoints cost (issue 20 item 1): CPU per decision of the whole system
(the launcher and every actor, all threads, from /proc) with its ZeroMQ endpoints on ``ipc://``
sockets in a private directory -- the default's transport, here ``--run-dir`` -- against the old
default, loopback ``tcp://`` endpoints, side by side in one run.

Rounds alternate (tcp, ipc, tcp, ipc, ...), each a launcher pricing ``BOOKS`` books every ``TICK``
seconds with ``--delay 0``: after a warm-up of two ticks' decisions, the CPU and the decisions over a
window. Value: ipc's median CPU per decision; baseline: tcp's, same run; ratio ipc / tcp (below 1:
ipc costs less). The HTTP edge (APIServer) is loopback TCP in both.

And what ``--keys`` costs the Ledger, whose socket with keys reads each message with its sender's
role (the ZAP ``User-Id``: only a writer's key stores decisions): its event loop's CPU per decision
(the thread that reads the socket, /proc) and its insert rate, ``LEDGER_DECISIONS`` decisions sent by
a worker-keyed DEALER (``bench.ledger.stream``), with keys against without, rounds alternating.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import common, driver, ledger, throughput
from bench.common import Config, Outcome, Row
from transport.roles import ALGORITHM
from transport.security import Keys, keygen

BOOKS = 300
TICK = 0.5
ROWS_PER_BOOK = 12
LEDGER_DECISIONS = 40_000


def tcp_args(directory: Path) -> list[str]:
    """The old defaults' transport, on free ports, with the rest of the run in ``directory``."""
    ports = [driver.free_port() for _ in range(3)]
    return ["--ticks-endpoint", f"tcp://127.0.0.1:{ports[0]}", "--data-endpoint", f"tcp://127.0.0.1:{ports[1]}",
            "--ledger-endpoint", f"tcp://127.0.0.1:{ports[2]}", "--db", str(directory / "ledger.sqlite3"),
            "--spool-dir", str(directory / "spool")]


def one_round(transport: str, window: float) -> dict[str, Any]:
    """One launcher run on ``transport`` ("tcp" or "ipc"): CPU seconds and decisions over ``window``."""
    csv = common.ensure_csv(BOOKS, ROWS_PER_BOOK)
    args: Sequence[str] = ["--data-file", str(csv), "--books-file", str(throughput.books_file(BOOKS)),
                           "--tick", str(TICK), "--delay", "0", "--hang-timeout", "10", "--status-every", "3600"]
    with driver.private_dir("ke-") as directory:
        if transport == "tcp":
            run = driver.LauncherRun([*args, "--api-port", str(driver.free_port()), *tcp_args(directory)])
        else:
            run = driver.LauncherRun(args, run_dir=directory / "run")
        with run:
            run.wait_actors(5, timeout=60.0)
            run.wait_decisions(2 * BOOKS, timeout=60.0)
            pids = {**run.pids(), "launcher": run.process.pid}
            before = {name: common.cpu_ns(pid) for name, pid in pids.items()}
            decided = run.decision_count()
            start = time.monotonic()
            time.sleep(window)  # a measuring window, not a wait for an event
            after = {name: common.cpu_ns(pid) for name, pid in pids.items()}
            decisions = run.decision_count() - decided
            elapsed = time.monotonic() - start
            restarted = run.pids() != {k: v for k, v in pids.items() if k != "launcher"}
    cpu = {name: (after[name] - before[name]) / 1e9 for name in pids}
    return {"transport": transport, "window_s": elapsed, "decisions": decisions, "cpu_s": cpu,
            "us_per_decision": 1e6 * sum(cpu.values()) / max(decisions, 1), "restarted": restarted}


def ledger_round(batches: list[bytes], keyed: bool) -> dict[str, Any]:
    """One Ledger (``python -m actors.ledger``) fed ``batches`` over tcp, with ``--keys`` or without."""
    with driver.private_dir("ke-") as directory:
        endpoint = f"tcp://127.0.0.1:{driver.free_port()}"
        keys: Keys | None = None
        extra: list[str] = []
        if keyed:
            keys = Keys.load(keygen(directory / "keys"), ALGORITHM)
            extra = ["--keys", str(directory / "keys")]
        with common.actor("ledger", "--ledger-endpoint", endpoint, "--db", str(directory / "l.sqlite3"),
                          *extra) as process:
            before = ledger.thread_cpu(process.pid)
            run = ledger.stream(endpoint, batches, probe=False, keys=keys)
            after = ledger.thread_cpu(process.pid)
    decisions = len(batches) * ledger.BATCH
    loop = after.get(process.pid, 0.0) - before.get(process.pid, 0.0)
    return {"keys": keyed, "rate": decisions / run["seconds"], "loop_us": 1e6 * loop / decisions}


def measure(cfg: Config) -> Outcome:
    rounds = cfg.pick(2, 3)
    window = cfg.pick(8.0, 15.0)
    batches = ledger.frames(cfg.pick(10_000, LEDGER_DECISIONS))
    keyed = [ledger_round(batches, keys) for i in range(rounds) for keys in ((True, False) if i % 2 else (False, True))]
    results = [one_round(transport, window) for _ in range(rounds) for transport in ("tcp", "ipc")]
    per = {t: [r["us_per_decision"] for r in results if r["transport"] == t] for t in ("tcp", "ipc")}
    ipc, tcp = statistics.median(per["ipc"]), statistics.median(per["tcp"])
    ratios = [i / t for i, t in zip(per["ipc"], per["tcp"], strict=True)]
    out = Outcome(raw={"books": BOOKS, "tick": TICK, "rounds": results, "ratios_by_round": ratios})
    out.rows.append(Row(f"CPU per decision, all processes, {BOOKS} books every {TICK:g}s: ipc:// in a private "
                        "directory (the default)", ipc, "µs", baseline=tcp, baseline_label="loopback tcp:// (the old "
                        "default), same run", note="ratios by round: " + ", ".join(f"{r:.2f}" for r in ratios)
                        + "; restarts: " + str(sum(r["restarted"] for r in results))))
    with_keys = [r for r in keyed if r["keys"]]
    plain = [r for r in keyed if not r["keys"]]
    out.raw["ledger_keys"] = keyed
    for what, unit in (("loop_us", "µs"), ("rate", "decisions/s")):
        label = ("the Ledger's event-loop CPU per decision" if what == "loop_us" else "the Ledger's insert rate")
        out.rows.append(Row(f"{label}, {len(batches) * ledger.BATCH:,} decisions over tcp, with --keys (CURVE, the "
                            "writer's role checked per message)", statistics.median(r[what] for r in with_keys), unit,
                            baseline=statistics.median(r[what] for r in plain), baseline_label="without keys, same run",
                            note="by round: " + ", ".join(f"{k[what] / p[what]:.2f}"
                                                           for k, p in zip(with_keys, plain, strict=True))))
    return out


if __name__ == "__main__":
    for row in measure(Config()).rows:
        print(row.as_dict())
