"""Run the benchmark suite: every measurement in one run, a markdown table on stdout, the raw results
as JSON in ``bench/results/<timestamp>.json``.

    python -m bench.run                  # full run (about 10 minutes on 2 cores)
    python -m bench.run --quick          # short version (under 2 minutes)
    python -m bench.run --only ticks,idle_cpu
    python -m bench.run --only soak --seconds 7200   # the release soak (only when asked for)

Measurements (each in its own module): throughput, http_clients, latency, ticks, memory, idle_cpu,
cold_read, replay, dashboard, catalog, api_server, ledger, hostile, backtest, algorithm_load, protocol,
pieces, batched; and,
only with --only, soak, kept and ledger_depth.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    algorithm_load,
    api_server,
    backtest,
    batched,
    catalog,
    cold_read,
    common,
    dashboard,
    endpoints,
    hostile,
    hostile_local,
    http_clients,
    idle_cpu,
    kept,
    latency,
    ledger,
    ledger_depth,
    memory,
    pieces,
    protocol,
    replay,
    throughput,
    ticks,
)
from bench.common import Config, Outcome, Row
from bench.soak import measure as soak


def _hostile(config: Config) -> Outcome:
    """``hostile``: the runs of bench.hostile, then bench.hostile_local's (forged ticks, the events
    socket, the Ledger's file)."""
    outcome = hostile.measure(config)
    local = hostile_local.measure(config)
    outcome.rows.extend(local.rows)
    outcome.raw["local"] = local.raw
    return outcome

MEASURES: dict[str, Callable[[Config], Outcome]] = {
    "throughput": throughput.measure,
    "http_clients": http_clients.measure,
    "latency": latency.measure,
    "ticks": ticks.measure,
    "memory": memory.measure,
    "idle_cpu": idle_cpu.measure,
    "cold_read": cold_read.measure,
    "replay": replay.measure,
    "dashboard": dashboard.measure,
    "catalog": catalog.measure,
    "api_server": api_server.measure,
    "ledger": ledger.measure,
    "hostile": _hostile,
    "backtest": backtest.measure,
    "algorithm_load": algorithm_load.measure,
    "protocol": protocol.measure,
    "pieces": pieces.measure,
    "batched": batched.measure,
    "soak": soak.measure,
    "kept": kept.measure,
    "endpoints": endpoints.measure,
    "ledger_depth": ledger_depth.measure,
}
ASKED_ONLY = frozenset({"soak", "kept", "ledger_depth"})  # minutes to hours: run when named, never by default
RESULTS = Path(__file__).resolve().parent / "results"


def table(rows: Sequence[tuple[str, Row]]) -> str:
    lines = ["| measure | value | baseline | ratio | target | met? |", "|---|---|---|---|---|---|"]
    for name, row in rows:
        value = f"{common.fmt(row.value)} {row.unit}".strip()
        baseline = f"{common.fmt(row.baseline)} ({row.baseline_label})" if row.baseline is not None else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        met = "-" if row.met is None else ("met" if row.met else "MISSED")
        measure = f"[{name}] {row.measure}" + (f" -- {row.note}" if row.note else "")
        lines.append(f"| {measure} | {value} | {baseline} | {ratio} | {row.target or '-'} | {met} |")
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    """JSON has no NaN: make it null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _clean(vars(value) if not hasattr(value, "__slots__") else
                      {name: getattr(value, name) for name in value.__dataclass_fields__})
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short version (< 2 minutes)")
    parser.add_argument("--only", default=",".join(n for n in MEASURES if n not in ASKED_ONLY), metavar="NAME,...",
                        help=f"measurements to run, among {','.join(MEASURES)} (default: all but "
                             f"{','.join(sorted(ASKED_ONLY))})")
    parser.add_argument("--seconds", type=float, default=None,
                        help="how long the soak runs (default 300; quick 60), and kept's run at scale "
                             "(default 60; quick 20)")
    parser.add_argument("--output", default=None, metavar="PATH", help="JSON path (default bench/results/<ts>.json)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        parser.error(f"unknown measurement(s) {unknown}; choose among {list(MEASURES)}")
    cfg = Config(quick=args.quick, seconds=args.seconds)
    started = time.time()
    rows: list[tuple[str, Row]] = []
    report: dict[str, Any] = {
        "started": datetime.fromtimestamp(started, UTC).isoformat(), "quick": cfg.quick, "only": names,
        "command": " ".join(["python", "-m", "bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count()},
        "measures": {},
    }
    failed = False
    for name in MEASURES:
        if name not in names:
            continue
        t = time.monotonic()
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        try:
            outcome = MEASURES[name](cfg)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            report["measures"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        seconds = time.monotonic() - t
        print(f"-- {name} done in {seconds:.1f}s", file=sys.stderr, flush=True)
        rows.extend((name, row) for row in outcome.rows)
        report["measures"][name] = {"seconds": seconds, "rows": [r.as_dict() for r in outcome.rows],
                                    "raw": outcome.raw}
    report["seconds"] = time.time() - started
    out = Path(args.output) if args.output else RESULTS / (
        datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ") + ("-quick" if cfg.quick else "") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_clean(report), indent=1), encoding="utf-8")
    print(table(rows))
    print(f"\nraw results: {out}  ({report['seconds']:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
