"""The Ledger of this checkout against another checkout's (main's, say) and the bare ``executemany``,
side by side in one run (issue 19):

    python -m bench.ledger_versus --against /work/main [--count 100000] [--rounds 4]

Each round runs, in an order that turns with the round (a neighbour's burst hits one round, not one
side): a bare ``sqlite3`` ``executemany`` of the same rows into the same schema, pragmas and
transactions of a batch (``bench.ledger.baseline``); this checkout's Ledger (``python -m
actors.ledger`` from this repository); the other checkout's (the same command with that checkout as
its working directory, so it imports its own code), each fed the same frames by the same client
(``bench.ledger.stream``: batches of 200, 4 in flight, as a worker sends them), on a database of its
own. Per side: decisions/s from the first send to the last acknowledgement, and the Ledger's CPU per
decision on its event loop and on its database thread (/proc). Printed as JSON: each round, and the
medians with the ratios per round (this / other, this / bare, other / bare). With ``--shards N``, also
N Ledgers of this checkout at once, a database and a client each (the design of one database per
worker), their total rate against one Ledger's.

Heavy (it wants both cores): on a shared machine run it niced and alone, and read the ratios within
a round rather than the absolute rates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import common, ledger
from bench.driver import private_dir


@contextlib.contextmanager
def _ledger_of(checkout: Path, endpoint: str, db: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The Ledger of ``checkout`` alone, stopped on exit; it also dies with us."""
    process = subprocess.Popen([sys.executable, "-m", "actors.ledger", "--ledger-endpoint", endpoint, "--db", str(db),
                                "--parent-pid", str(os.getpid()), "--log-level", "WARNING"],
                               cwd=checkout, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        common.terminate(process)


def ledger_side(checkout: Path, batches: list[bytes], count: int) -> dict[str, float]:
    """One Ledger run: its rate, and its CPU per decision on the event loop and the database thread."""
    with private_dir("blv-") as directory:
        endpoint = f"ipc://{directory}/ledger.sock"
        with _ledger_of(checkout, endpoint, directory / "ledger.sqlite3") as process:
            ledger.idle_probes(endpoint, 0.5)  # started and answering: its start-up is not timed
            before = ledger.thread_cpu(process.pid)
            run = ledger.stream(endpoint, batches, probe=False)
            after = ledger.thread_cpu(process.pid)
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    loop = used.pop(process.pid, 0.0)
    return {"rate": count / float(run["seconds"]), "loop_us": loop / count * 1e6,
            "db_thread_us": max(used.values(), default=0.0) / count * 1e6}


def shards_side(shards: int, batches: list[bytes], count: int) -> dict[str, float]:
    """One database per worker: ``shards`` Ledgers of this checkout, each with a database of its own and
    a client of its own sending ``count / shards`` decisions, all at once; their total rate."""
    part = batches[:len(batches) // shards]
    with contextlib.ExitStack() as stack:
        endpoints = []
        for i in range(shards):
            directory = stack.enter_context(private_dir("blv-"))
            endpoints.append(f"ipc://{directory}/ledger.sock")
            stack.enter_context(_ledger_of(common.REPO, endpoints[-1], directory / f"ledger-{i}.sqlite3"))
        for endpoint in endpoints:
            ledger.idle_probes(endpoint, 0.5)
        with ThreadPoolExecutor(shards) as clients:
            started = time.monotonic()
            list(clients.map(lambda endpoint: ledger.stream(endpoint, part, probe=False), endpoints))
            seconds = time.monotonic() - started
    return {"rate": len(part) * ledger.BATCH * shards / seconds}


def bare_side(count: int) -> dict[str, float]:
    """The bare executemany: its rate, and its CPU per decision (this process's, while it inserts)."""
    with private_dir("blv-") as directory:
        seconds, cpu = ledger.bare_insert(directory / "bare.sqlite3", count)
    return {"rate": count / seconds, "cpu_us": cpu / count * 1e6}


def run(against: Path, count: int, rounds: int, shards: int = 0) -> dict[str, Any]:
    batches = ledger.frames(count)
    sides = {"this": lambda: ledger_side(common.REPO, batches, count),
             "other": lambda: ledger_side(against, batches, count),
             "bare": lambda: bare_side(count)}
    if shards > 1:
        sides["shards"] = lambda: shards_side(shards, batches, count)
    names = list(sides)
    done: list[dict[str, dict[str, float]]] = []
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        done.append({name: sides[name]() for name in order})
        print(json.dumps({"round": i + 1, "order": order, **done[-1]}), file=sys.stderr, flush=True)

    def median(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in done)

    def ratios(a: str, b: str) -> list[float]:
        return [round(r[a]["rate"] / r[b]["rate"], 2) for r in done]
    return {"count": count, "rounds": done, "against": str(against),
            "rate": {side: median(side, "rate") for side in names},
            "loop_us": {side: median(side, "loop_us") for side in ("this", "other")},
            "db_thread_us": {side: median(side, "db_thread_us") for side in ("this", "other")},
            "this_over_other": ratios("this", "other"), "this_over_bare": ratios("this", "bare"),
            "bare_cpu_us": median("bare", "cpu_us"),
            "other_over_bare": ratios("other", "bare"),
            **({"shards": shards, "shards_over_this": ratios("shards", "this"),
                "shards_over_bare": ratios("shards", "bare")} if shards > 1 else {})}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_versus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout (its Ledger is run from it)")
    parser.add_argument("--count", type=int, default=100_000, help="decisions per side and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--shards", type=int, default=0,
                        help="also N Ledgers of this checkout at once, a database and a client each (N >= 2)")
    args = parser.parse_args(argv)
    if not (args.against / "actors" / "ledger").is_dir():
        parser.error(f"{args.against} is not a checkout of this project")
    result = run(args.against.resolve(), args.count // ledger.BATCH * ledger.BATCH, args.rounds, args.shards)
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
