"""Shared by the backtest's tests: price files, configs and jobs made from a seed."""

from __future__ import annotations

import random
from pathlib import Path

from actors.algorithm.backtest.job import Decisions, Job
from actors.pricing.config import Config


def price_file(path: Path, books: list[str], rows: int, seed: int, *, sort_by_book: bool = False,
               bad_every: int = 0, uneven: bool = False) -> Path:
    """A CSV of random walks (cents, sometimes 3-6 decimals), interleaved or sorted by book; with
    ``bad_every``, a bad or odd line now and then; with ``uneven``, books of different lengths."""
    rng = random.Random(seed)
    lines = ["timestamp,book_id,price"]
    walks = {book: rng.uniform(5, 60) for book in books}
    length = {book: rows if not uneven else rng.randint(0, rows) for book in books}
    order = ([(b, i) for b in books for i in range(length[b])] if sort_by_book
             else [(b, i) for i in range(rows) for b in books if i < length[b]])
    for n, (book, _) in enumerate(order):
        walks[book] = max(0.02, walks[book] + rng.gauss(0, 0.6))
        places = rng.choice([2, 2, 2, 3, 6])
        lines.append(f"2026-01-01T00:00:{n % 60:02d}Z,{book},{walks[book]:.{places}f}")
        if bad_every and n % bad_every == 0:
            lines.append(rng.choice([f"t,{book},abc", "", f"t,{book},-1", f' t , "{book}" , 12.5 ', "t,,1",
                                     f"t,{book},0.001", f"t,{book}"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def job_of(config: Config, **kwargs: object) -> Job:
    pairs = tuple(p for p in config.pairs if not config.is_paused(p.book, p.strategy.name))
    return Job(config, pairs, **kwargs)  # type: ignore[arg-type]


def decisions_by_key(batches: list[Decisions], job: Job) -> dict[tuple[str, str, int], tuple[int, ...]]:
    out: dict[tuple[str, str, int], tuple[int, ...]] = {}
    for d in batches:
        for i in range(len(d.pair)):
            pair = job.pairs[int(d.pair[i])]
            key = (pair.book, pair.strategy.name, int(d.tick[i]))
            assert key not in out, key
            out[key] = (int(d.request_id[i]), int(d.sold[i]), int(d.sent[i]), int(d.price[i]), int(d.rule[i]),
                        int(d.bits[i]), int(d.sums[i]))
    return out
