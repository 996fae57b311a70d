"""Demand models: whether a book sold at a tick, for arrays of decisions at once. Pure.

* ``parity``: the mock API's rule, an even request id sold. Ids are a live run's (``--ids``: the
  backtest then makes exactly that run's decisions) or generated as one registration per pair and
  tick in a fixed order: ``first_id + tick * pairs + rank`` (the pair's place in the config, paused
  pairs left out).
* ``logistic``: the probability of a sale is ``max / (1 + exp(steepness * (ratio - midpoint)))``
  where ``ratio`` is the price on sale (the price registered at that tick) over the competitor's
  average. The draw is a counter-based generator (SplitMix64) of (seed, book, tick): the same for
  every strategy pricing the book, whatever the order or the process deciding it, so strategies are
  compared against the same customers and a run is reproducible. The probability is a float (it is
  not money); both engines compute it with the same numpy function.
"""

from __future__ import annotations

import zlib
from typing import Final

import numpy as np
import numpy.typing as npt

from actors.algorithm.backtest.cents import I64, MICRO_PER_CENT, Bools
from actors.pricing.config.backtest import Logistic

U64 = npt.NDArray[np.uint64]
_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)


def book_key(book: str) -> int:
    """A book's stream of draws (stable across processes, unlike ``hash``)."""
    return zlib.crc32(book.encode("utf-8", "surrogatepass"))


def _splitmix(x: U64) -> U64:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    result: U64 = z ^ (z >> np.uint64(31))
    return result


def uniforms(seed: int, keys: npt.NDArray[np.int64], ticks: I64) -> npt.NDArray[np.float64]:
    """One draw in [0, 1) per (book key, tick): 53 random bits."""
    with np.errstate(over="ignore"):
        stream = _splitmix((np.uint64(seed) << np.uint64(32)) ^ keys.astype(np.uint64))
        bits = _splitmix(stream + ticks.astype(np.uint64)) >> np.uint64(11)
    result: npt.NDArray[np.float64] = bits.astype(np.float64) * (1.0 / (1 << 53))
    return result


def sale_probability(model: Logistic, sent: I64, sums: I64, window: I64 | int) -> npt.NDArray[np.float64]:
    """The probability that a book on sale at ``sent`` cents sells, against windows summing to ``sums``
    millionths over ``window`` prices."""
    ratio = (sent * MICRO_PER_CENT * np.asarray(window, dtype=np.int64)).astype(np.float64) / sums.astype(np.float64)
    with np.errstate(over="ignore"):
        result: npt.NDArray[np.float64] = float(model.max_probability) / (
            1.0 + np.exp(float(model.steepness) * (ratio - float(model.midpoint))))
    return result


def logistic_sold(model: Logistic, sent: I64, sums: I64, window: I64 | int, keys: npt.NDArray[np.int64],
                  ticks: I64) -> Bools:
    sold: Bools = uniforms(model.seed, keys, ticks) < sale_probability(model, sent, sums, window)
    return sold


def parity_sold(ids: I64) -> Bools:
    """The mock's verdict (``actors.api_server.request_ids.is_sold``): even ids sold."""
    sold: Bools = ids % 2 == 0
    return sold


def generated_ids(first_id: int, ticks: I64, pairs: int, ranks: I64) -> I64:
    ids: I64 = first_id + ticks * pairs + ranks
    return ids
