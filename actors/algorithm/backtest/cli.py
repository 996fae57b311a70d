"""``python -m actors.algorithm.backtest`` (or ``repricer-backtest``): what would each strategy have done
on this file?

Replays every tick of the competitor-price file for every (book, strategy) pair of the config, through
the live pricing rule and guardrails, with a demand model from the config's ``[backtest]`` table, and
prints per pair and per strategy what it would have sold and earned. No sockets, no sleeping: the
file is streamed once, as fast as the machine allows. ``--data-file``, ``--config`` (or ``--books``,
``--books-file``, ``--delay``) and ``--tick`` are the launcher's, refused the same way with the same
message. See docs/backtest.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from actors.algorithm.backtest import engine, output, reference, report, sweep
from actors.algorithm.backtest.costs import unit_costs
from actors.algorithm.backtest.job import Job, Result
from actors.algorithm.backtest.plan import IdsError, read_ids
from actors.algorithm.backtest.reader import BLOCK_BYTES
from actors.algorithm.backtest.stats import OBJECTIVES, totals
from actors.algorithm.inputs import pricing
from actors.algorithm.options import PricingOptions
from actors.options import add_options, borrow, borrowed, from_namespace, make_parser
from actors.pricing.config import Config, ConfigError
from actors.pricing.config.backtest import REPORT_DEFAULT, Logistic
from actors.run_inputs import Refusal, RunInputs, data_file, readable_file
from transport import files
from transport.logs import printable

DEFAULT_REPORT: Final = REPORT_DEFAULT  # the Dashboard links to the report found here
ENGINES: Final = ("fast", "plain")


@dataclass(frozen=True, slots=True)
class Inputs:
    """The launcher's inputs, declared once for both (borrowed: same flags, defaults, parsing) and
    validated by the classes that declare them."""

    data_file: str = borrow(RunInputs, "data_file", deprecated=("--data",))
    tick: float = borrow(RunInputs, "tick", help="the live tick a strategy's delay must be shorter "
                         "than, as the launcher checks it")
    books: str = borrow(PricingOptions, "books")
    books_file: str | None = borrow(PricingOptions, "books_file")
    delay: Decimal = borrow(PricingOptions, "delay")
    config: str | None = borrow(PricingOptions, "config")

    def __post_init__(self) -> None:
        borrowed(self, RunInputs)  # each class checks its own
        borrowed(self, PricingOptions)

    @property
    def pricing(self) -> PricingOptions:
        return borrowed(self, PricingOptions)


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("python -m actors.algorithm.backtest", __doc__)
    add_options(parser, Inputs, "the launcher's inputs")
    run = parser.add_argument_group("what to replay")
    run.add_argument("--ids", metavar="FILE", help="decide exactly a live run's decisions with its request ids: "
                     "the Ledger's history export (csv or json) of that run")
    run.add_argument("--ids-run", metavar="RUN", help="with --ids: the run to take when the file holds several")
    run.add_argument("--ticks", type=int, metavar="N", help="decide ticks 0..N-1 (default: every tick until every "
                     "book has shown its last price)")
    run.add_argument("--engine", choices=ENGINES, default="fast",
                     help="fast (numpy, integer cents) or plain (a loop over the live Decimal code: slow, for "
                          "checking)")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=output.FORMATS, default="table", help="stdout's format (default table)")
    out.add_argument("--objective", choices=OBJECTIVES, default="revenue",
                     help="what ranks strategies and picks a sweep's best (margin needs unit costs; default revenue)")
    out.add_argument("--html", metavar="PATH", default=DEFAULT_REPORT,
                     help=f"write the HTML report there (default {DEFAULT_REPORT}: the Dashboard links to it)")
    out.add_argument("--no-html", action="store_true", help="write no HTML report")
    out.add_argument("--decisions", metavar="PATH", help="write every decision as CSV there ('-': stdout)")
    grid = parser.add_argument_group("what-if sweeps")
    grid.add_argument("--sweep", action="append", default=[], metavar="NAME=FROM..TO:STEP",
                      help="a grid axis over a strategy parameter (window, sold_factor, unsold_factor): e.g. "
                           "sold_factor=1.02..1.20:0.02 or window=3,5,8; repeat for a grid")
    grid.add_argument("--sweep-strategy", metavar="NAME", help="the strategy swept (default: the config's only one)")
    grid.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                      help="processes a sweep runs in (default: the cores)")
    return parser


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """A checked command line."""

    args: argparse.Namespace
    inputs: Inputs
    job: Job
    axes: tuple[sweep.Axis, ...]
    warnings: tuple[str, ...]


def parse_args(argv: Sequence[str] | None) -> Plan:
    """Parse and check; what cannot work is one ``error:`` line and exit code 2, in the launcher's
    order and words for what the launcher checks too."""
    parser = build_parser()
    args = parser.parse_args(argv)
    inputs = from_namespace(Inputs, args, parser)  # the options' own checks
    try:
        readable_file("--data-file", inputs.data_file)
        books, config = pricing(inputs.pricing, inputs.tick)
        data_file("--data-file", inputs.data_file, books, replay=True)  # as the launcher's replay
        return _plan(args, inputs, books, config or Config.simple(books, inputs.delay))
    except (Refusal, ConfigError, IdsError, sweep.SweepError, ValueError) as exc:
        parser.error(str(exc))


def _plan(args: argparse.Namespace, inputs: Inputs, books: list[str], config: Config) -> Plan:
    if args.ticks is not None and not 1 <= args.ticks <= 10**9:
        raise Refusal(f"--ticks must be within 1..{10**9}, got {args.ticks}")
    if args.jobs < 1:
        raise Refusal(f"--jobs must be at least 1, got {args.jobs}")
    if args.ids_run and not args.ids:
        raise Refusal("--ids-run goes with --ids")
    if args.ids and args.ticks is not None:
        raise Refusal("--ticks goes without --ids: a live run's ids say which ticks are decided")
    if args.ids and isinstance(config.backtest.demand, Logistic):
        raise Refusal("--ids gives a live run's request ids: that is the parity demand model, not logistic")
    ids = read_ids(args.ids, args.ids_run) if args.ids else None
    costs = unit_costs(config, inputs.config, set(books))
    pairs = tuple(p for p in config.pairs if not config.is_paused(p.book, p.strategy.name))
    if not pairs:
        raise Refusal("nothing to replay: every pair is paused")
    job = Job(config, pairs, ids=ids, ticks=args.ticks, costs=costs.by_book)
    axes = tuple(sweep.parse_axis(text) for text in args.sweep)
    if axes:
        name = args.sweep_strategy or (next(iter(config.strategies)) if len(config.strategies) == 1 else None)
        if name is None:
            raise Refusal(f"--sweep: the config has {len(config.strategies)} strategies: name one with "
                          "--sweep-strategy")
        job = sweep.sweep_job(job, name, axes)
    elif args.sweep_strategy:
        raise Refusal("--sweep-strategy goes with --sweep")
    paused = len(config.pairs) - len(pairs)
    notes = [*costs.warnings, *([f"{paused} paused pair(s) left out, as the live system does"] if paused else [])]
    return Plan(args, inputs, job, axes, tuple(notes))


def about(plan: Plan) -> dict[str, Any]:
    model = plan.job.demand
    return {"data": plan.inputs.data_file, "config": plan.inputs.config,
            "demand": "logistic" if isinstance(model, Logistic) else "parity",
            "ids": plan.args.ids, "objective": plan.args.objective, "sweep": [a.name for a in plan.axes]}


def replay(plan: Plan) -> Result:
    args, job = plan.args, plan.job
    sink = None
    decisions = None
    if args.decisions:
        # A regular file, opened without waiting (a FIFO is refused: '-' streams to a pipe).
        decisions = sys.stdout if args.decisions == "-" else files.open_text(args.decisions, write=True,
                                                                            newline="")
        sink = output.DecisionWriter(decisions, job)
    try:
        if plan.axes and args.engine == "fast" and sink is None:
            return sweep.run(job, plan.inputs.data_file, args.jobs, BLOCK_BYTES)
        run = engine.run if args.engine == "fast" else reference.run
        return run(job, plan.inputs.data_file, sink)
    finally:
        if decisions is not None and decisions is not sys.stdout:
            decisions.close()


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        result = replay(plan)
    except OSError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return 2
    args = plan.args
    ranking = totals(result.pairs, args.objective)
    for example in result.examples:
        print(f"warning: {example}", file=sys.stderr)
    if result.counters.get("bad_rows"):
        print(f"warning: {result.counters['bad_rows']} bad row(s) skipped, as the DataManager skips them",
              file=sys.stderr)
    if args.decisions != "-":
        if args.format == "json":
            text = output.json_text(result, ranking, about(plan))
        elif args.format == "csv":
            text = output.csv_text(result, ranking)
        else:
            text = output.table(result, ranking, args.objective)
            if plan.axes:
                text += report.best_table(sweep.best_per_book(result, args.objective), args.objective)
        sys.stdout.write(text)
    if not args.no_html:
        path = Path(args.html)
        path.parent.mkdir(parents=True, exist_ok=True)
        report.write(path, plan.job, result, ranking, about(plan),
                     sweep.best_per_book(result, args.objective) if plan.axes else None)
        print(f"report: {path}", file=sys.stderr)
    rate = result.decisions / result.seconds if result.seconds else 0.0
    print(f"backtest: {result.decisions} decisions of {len(result.pairs)} pair(s), ticks 0..{result.last_tick}, in "
          f"{result.seconds:.2f} s ({rate:,.0f} decisions/s)", file=sys.stderr)
    return 0
