"""The fast engine makes exactly the decisions of the plain loop over the live Decimal code (the
reference), decision by decision and sum by sum, over random files, configs, guardrails, demand
models, id plans and block sizes."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from actors.algorithm.backtest import engine, reference
from actors.algorithm.backtest.job import Decisions, Job
from actors.algorithm.backtest.plan import IdPlan, PairIds
from actors.pricing.config import Config, parse_config
from tests.actors.algorithm.backtest.helpers import decisions_by_key, job_of, price_file


def random_config(rng: random.Random, books: list[str]) -> str:
    lines = []
    names = [f"s{i}" for i in range(rng.randint(1, 3))]
    for name in names:
        places = rng.choice([1, 2, 3, 12])
        sold = Decimal(rng.uniform(1.0, 1.3)).quantize(Decimal(10) ** -places)
        unsold = Decimal(rng.uniform(0.7, 1.0)).quantize(Decimal(10) ** -places)
        lines += [f"[strategies.{name}]", f"window = {rng.choice([1, 2, 3, 5, 8])}", f'sold_factor = "{sold}"',
                  f'unsold_factor = "{unsold}"', "delay = 0"]
    lines += ["[[books]]", f"ids = {books!r}".replace("'", '"'), f"strategies = {names!r}".replace("'", '"')]
    guard = rng.random()
    if guard < 0.7:
        lines.append("[guardrails]")
        if rng.random() < 0.6:
            step = rng.choice(["1", "2.5", "5", "10", '"0.000001"'])
            lines.append(f"max_step_pct = {step}")
        if rng.random() < 0.5:
            lines.append(f'ending = "{rng.choice(["0.99", "0.49", "0", "0.95"])}"')
        if rng.random() < 0.5:
            lines.append(f'floor = "{rng.choice(["5.00", "20.00", "30.00"])}"')
        if rng.random() < 0.5:
            lines.append(f'ceiling = "{rng.choice(["40.00", "60.00", "25.00"])}"')
        if "floor = \"30.00\"" in lines and "ceiling = \"25.00\"" in lines:
            lines.remove("ceiling = \"25.00\"")
        for book in rng.sample(books, k=min(len(books), rng.randint(0, 2))):
            lines += [f'[guardrails.books."{book}"]', f"max_step_pct = {rng.choice(['3', '50'])}"]
    if rng.random() < 0.2:
        lines += ["[pause]", f'books = ["{books[0]}"]']
    if rng.random() < 0.4:
        lines += ["[backtest]", 'demand = "logistic"', "[backtest.logistic]", f"seed = {rng.randint(0, 99)}",
                  f'steepness = "{rng.choice(["3", "10", "40"])}"', f'max_probability = "{rng.choice(["0.5", "1"])}"']
    elif rng.random() < 0.5:
        lines += ["[backtest]", f"first_id = {rng.randint(0, 10**15)}"]
    return "\n".join(lines) + "\n"


def random_plan(rng: random.Random, job: Job, last: int) -> IdPlan:
    pairs = {}
    for pair in job.pairs:
        if rng.random() < 0.8:
            ticks = sorted(rng.sample(range(last + 5), k=rng.randint(0, last + 5)))
            pairs[pair.key] = PairIds(np.array(ticks, dtype=np.int64),
                                      np.array([rng.randint(0, 10**16) for _ in ticks], dtype=np.int64))
    return IdPlan(pairs, None, sum(len(p.ticks) for p in pairs.values()))


def both(job: Job, path: Path, block_bytes: int) -> None:
    fast: list[Decisions] = []
    plain: list[Decisions] = []
    got = engine.FastEngine(job, fast.append, block_bytes).run(str(path))
    want = reference.run(job, str(path), plain.append)
    assert decisions_by_key(fast, job) == decisions_by_key(plain, job)
    assert got.pairs == want.pairs
    assert got.last_tick == want.last_tick
    for key, value in want.counters.items():
        if key != "lines_read":
            assert got.counters.get(key, 0) == value, key
    for i, chart in want.charts.items():
        assert (got.charts[i].tick, got.charts[i].price, got.charts[i].sums) == (chart.tick, chart.price, chart.sums)


@pytest.mark.parametrize("seed", range(40))
def test_the_fast_engine_makes_the_reference_decisions(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    books = [f"B{i:03d}" for i in range(rng.choice([1, 2, 5, 12]))]
    path = price_file(tmp_path / "prices.csv", books, rng.randint(0, 60), seed, sort_by_book=rng.random() < 0.3,
                      bad_every=rng.choice([0, 0, 7]), uneven=rng.random() < 0.4)
    config = parse_config(random_config(rng, books))
    ticks = rng.choice([None, None, rng.randint(1, 90)])
    job = job_of(config, ticks=ticks, chart_points=rng.choice([4, 1000]))
    if rng.random() < 0.3:
        job = job_of(config, ids=random_plan(rng, job, 70))
    both(job, path, rng.choice([1024, 1 << 20]))


def test_many_pairs_with_a_step_limit_go_in_lockstep(tmp_path: Path) -> None:
    books = [f"B{i:03d}" for i in range(30)]
    path = price_file(tmp_path / "prices.csv", books, 300, 1, uneven=True)
    config: Config = parse_config('[strategies.a]\nwindow = 3\n[strategies.b]\nsold_factor = "1.3"\n'
                                  f'[[books]]\nids = {books!r}\nstrategies = ["a", "b"]\n'.replace("'", '"')
                                  + '[guardrails]\nmax_step_pct = 2\nending = "0.99"\nfloor = "9.00"\n')
    both(job_of(config), path, 4096)
    both(job_of(config, ticks=500), path, 1 << 20)


def test_a_file_without_book_ids_prices_every_book_from_one_series(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("price\n" + "\n".join(f"{10 + (i * 7) % 13}.{i % 100:02d}" for i in range(50)) + "\n")
    config = parse_config('[[books]]\nids = ["X", "Y"]\n[guardrails]\nmax_step_pct = 5\n')
    both(job_of(config), path, 1024)


def test_factors_beyond_integer_exactness_go_through_the_live_rule(tmp_path: Path) -> None:
    # 36 decimals (the most a factor has): past what 60 digits keep exact in integers (cents.EXACT_DEN_MAX);
    # mixed with usual pairs.
    books = [f"B{i:03d}" for i in range(8)]
    path = price_file(tmp_path / "prices.csv", books, 40, 3)
    config = parse_config('[strategies.fine]\nsold_factor = "1.100000000000000000000000000000000001"\n'
                          'unsold_factor = "0.899999999999999999999999999999999999"\n[strategies.plain]\n'
                          f'[[books]]\nids = {books!r}\nstrategies = ["fine", "plain"]\n'.replace("'", '"'))
    job = job_of(config)
    assert not engine.FastEngine(job).exact[0] and engine.FastEngine(job).exact[1]
    both(job, path, 1024)
    with_step = parse_config('[strategies.fine]\nsold_factor = "1.100000000000000000000000000000000001"\n'
                             f'[[books]]\nids = {books!r}\n[guardrails]\nmax_step_pct = 3\n'.replace("'", '"'))
    both(job_of(with_step), path, 1024)
