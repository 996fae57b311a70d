"""The release soak from the command line; the defaults are the release's (2 hours, 1,000 books).

    python -m bench.soak                          # the release soak: 7,200 s, 1,000 books, tick 1 s
    python -m bench.soak --seconds 300            # the same for 5 minutes
    python -m bench.soak --seconds 60 --books 50  # a quick look

Prints one screen of summary, writes the whole of it as JSON (``--json``, default
``bench/results/soak-<UTC time>.json``) and exits 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.soak.report import judge, screen
from bench.soak.run import Plan, soak

RESULTS = Path(__file__).resolve().parent.parent / "results"


def parser() -> argparse.ArgumentParser:
    defaults = Plan()
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=defaults.seconds,
                   help="how long, from the first decision (default %(default)s)")
    p.add_argument("--books", type=int, default=defaults.books, help="default %(default)s")
    p.add_argument("--tick", type=float, default=defaults.tick, help="seconds (default %(default)s)")
    p.add_argument("--delay", type=float, default=defaults.delay,
                   help="seconds between registering and reading a request (default %(default)s)")
    p.add_argument("--reload-every", type=float, default=defaults.reload_every,
                   help="seconds between SIGHUP reloads, 0 for none (default %(default)s)")
    p.add_argument("--workers", type=int, default=defaults.workers, help="Algorithm workers (default %(default)s)")
    p.add_argument("--max-growth", type=float, default=defaults.max_growth_pct,
                   help="RSS growth allowed from the middle to the end, percent (default %(default)s)")
    p.add_argument("--no-browser", action="store_true", help="no live Chromium on the Dashboard")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="where to write the summary (default bench/results/soak-<UTC time>.json)")
    return p


def plan_from(args: argparse.Namespace) -> Plan:
    return Plan(books=args.books, tick=args.tick, delay=args.delay, seconds=args.seconds,
                reload_every=args.reload_every, workers=args.workers, max_growth_pct=args.max_growth,
                browser=not args.no_browser)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    plan = plan_from(args)
    started = datetime.now(UTC)
    print(f"soak: {plan.books} books, tick {plan.tick} s, {plan.seconds:.0f} s from the first decision; "
          f"started {started:%Y-%m-%d %H:%M:%S} UTC", file=sys.stderr, flush=True)
    summary = judge(soak(plan))
    summary["started"] = started.isoformat()
    summary["command"] = " ".join(["python -m bench.soak", *(argv if argv is not None else sys.argv[1:])])
    out = args.json or RESULTS / f"soak-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(screen(summary))
    print(f"summary: {out}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
