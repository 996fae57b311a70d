"""What-if sweeps: a grid over one strategy's parameters, every combination backtested on the same file,
in parallel across processes, with the best combination per book.

``--sweep sold_factor=1.02..1.20:0.02`` (from..to:step, both ends included) or
``--sweep window=3,5,8`` (a list), repeated for a grid. Each combination is a variant of the strategy
(named ``NAME[sold_factor=1.04 window=5]``) pricing the strategy's books; a variant keeps the place of
the pair it varies in the generated request ids, so every variant sees the same sales under parity.
The variants are split over ``--jobs`` processes (each streams the file itself: memory stays bounded
per process); each process decides all its variants in one pass over the file.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Final

from actors.algorithm.backtest.engine import FastEngine
from actors.algorithm.backtest.job import Job, Result
from actors.algorithm.backtest.stats import PairStats, StrategyTotals, totals
from actors.pricing.rule import PricingRule
from actors.pricing.strategies import Pair, Strategy
from transport import limits

PARAMETERS: Final = ("window", "sold_factor", "unsold_factor")
COMBINATIONS_MAX: Final = 10_000
VALUES_MAX: Final = 1_000


class SweepError(ValueError):
    """A sweep that cannot run; the message says why (one line)."""


@dataclass(frozen=True, slots=True)
class Axis:
    name: str
    values: tuple[Decimal, ...]


def parse_axis(text: str) -> Axis:
    """``NAME=FROM..TO:STEP`` or ``NAME=V1,V2,...``."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or name not in PARAMETERS:
        raise SweepError(f"--sweep {text!r}: expected NAME=FROM..TO:STEP or NAME=V1,V2 with NAME one of "
                         f"{', '.join(PARAMETERS)}")
    try:
        if ".." in spec:
            span, _, step_text = spec.partition(":")
            low_text, _, high_text = span.partition("..")
            low, high = Decimal(low_text.strip()), Decimal(high_text.strip())
            step = Decimal(step_text.strip()) if step_text.strip() else Decimal(1 if name == "window" else "0.01")
            if not (low.is_finite() and high.is_finite() and step.is_finite()) or step <= 0 or high < low:
                raise SweepError(f"--sweep {text!r}: FROM <= TO and a positive STEP expected")
            if (high - low) / step >= VALUES_MAX:
                raise SweepError(f"--sweep {text!r}: more than {VALUES_MAX} values")
            values = [low + i * step for i in range(int((high - low) / step) + 1)]
        else:
            values = [Decimal(v.strip()) for v in spec.split(",") if v.strip()]
    except InvalidOperation:
        raise SweepError(f"--sweep {text!r}: not a number") from None
    if not values or len(values) > VALUES_MAX:
        raise SweepError(f"--sweep {text!r}: 1..{VALUES_MAX} values expected")
    for value in values:
        _check(name, value, text)
    return Axis(name, tuple(dict.fromkeys(values)))


def _check(name: str, value: Decimal, text: str) -> None:
    if name == "window":
        if value != value.to_integral_value() or not 1 <= value <= limits.WINDOW_MAX:
            raise SweepError(f"--sweep {text!r}: window {value} is not an integer 1..{limits.WINDOW_MAX}")
    elif not (value.is_finite() and limits.FACTOR_MIN <= value <= limits.FACTOR_MAX):
        raise SweepError(f"--sweep {text!r}: {name} {value} is not within {limits.FACTOR_MIN}..{limits.FACTOR_MAX}")


def variants(base: Strategy, axes: Sequence[Axis]) -> list[Strategy]:
    """One strategy per combination of the axes' values."""
    combos = list(itertools.product(*(axis.values for axis in axes)))
    if len(combos) > COMBINATIONS_MAX:
        raise SweepError(f"--sweep: {len(combos)} combinations, more than {COMBINATIONS_MAX}")
    out = []
    for combo in combos:
        fields = {"window": Decimal(base.rule.window), "sold_factor": base.rule.sold_factor,
                  "unsold_factor": base.rule.unsold_factor}
        for axis, value in zip(axes, combo, strict=True):
            fields[axis.name] = value
        label = " ".join(f"{axis.name}={value.normalize() if axis.name != 'window' else int(value)}"
                         for axis, value in zip(axes, combo, strict=True))
        rule = PricingRule(int(fields["window"]), fields["sold_factor"], fields["unsold_factor"])
        out.append(Strategy(f"{base.name}[{label}]", rule, base.delay))
    return out


def sweep_job(job: Job, strategy: str, axes: Sequence[Axis]) -> Job:
    """The job deciding every variant of ``strategy`` for its books (no other pair)."""
    base = job.config.strategies.get(strategy)
    if base is None:
        raise SweepError(f"--sweep-strategy: no strategy {strategy!r} (the config has "
                         f"{', '.join(job.config.strategies)})")
    ranks = job.ranks()
    pairs, id_ranks = [], []
    for i, pair in enumerate(job.pairs):
        if pair.strategy.name == strategy:
            for variant in variants(base, axes):
                pairs.append(Pair(pair.book, variant))
                id_ranks.append(ranks[i])
    if not pairs:
        raise SweepError(f"--sweep-strategy {strategy}: it prices no book here (all paused?)")
    return replace(job, pairs=tuple(pairs), id_ranks=tuple(id_ranks), id_pairs=job.ids_per_tick(), chart_pairs=0,
                   horizon_window=min(p.strategy.rule.window for p in pairs))


def _share(job: Job, path: str, block_bytes: int) -> Result:
    return FastEngine(job, block_bytes=block_bytes).run(path)


def run(job: Job, path: str, processes: int, block_bytes: int) -> Result:
    """Backtest a sweep's job split over ``processes`` (by variant: a book's variants may be split, the
    results are put back in the job's order)."""
    names = list(dict.fromkeys(p.strategy.name for p in job.pairs))
    processes = max(1, min(processes, len(names)))
    if processes == 1:
        return _share(job, path, block_bytes)
    shares = [set(names[i::processes]) for i in range(processes)]
    jobs = []
    for share in shares:
        index = [i for i, p in enumerate(job.pairs) if p.strategy.name in share]
        ranks = job.ranks()
        jobs.append(replace(job, pairs=tuple(job.pairs[i] for i in index), id_ranks=tuple(ranks[i] for i in index)))
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_share, jobs, [path] * processes, [block_bytes] * processes))
    by_key: dict[tuple[str, str], PairStats] = {}
    for result in results:
        by_key.update({(p.book, p.strategy): p for p in result.pairs})
    first = results[0]
    return Result([by_key[p.key] for p in job.pairs], {}, first.counters, first.examples,
                  max(r.last_tick for r in results), max(r.seconds for r in results))


@dataclass(frozen=True, slots=True)
class Best:
    book: str
    variant: str
    score: int
    pair: PairStats


def best_per_book(result: Result, objective: str) -> list[Best]:
    """For each book, the variant that scored highest (the first in grid order on a tie)."""
    best: dict[str, Best] = {}
    for pair in result.pairs:
        margin = pair.margin
        score = pair.units if objective == "units" else margin if objective == "margin" and margin is not None \
            else pair.revenue
        if pair.book not in best or score > best[pair.book].score:
            best[pair.book] = Best(pair.book, pair.strategy, score, pair)
    return list(best.values())


def ranked(result: Result, objective: str) -> list[StrategyTotals]:
    return totals(result.pairs, objective)
