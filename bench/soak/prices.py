"""Each printed decision checked against the documented rule, re-computed here from scratch: its
window must be 5 consecutive rows the feed wrote for its book (:class:`~bench.soak.feed.History`), its
``sold`` flag what the API's rule says of its request id (sold exactly when the id is even), its mean
the exact mean of the window, and its rule price that mean times 1.1 after a sale or 0.9 after none,
rounded half-up to cents -- none of it by the Algorithm's code. The guardrails of the config in force
(:meth:`~actors.pricing.config.Config.guard`, given the pair's previous printed price) then make the
printed price: that step uses the product's own pure function (docs/limits.md says so). Pure: no I/O,
no clock.

Which config was in force is known by time: the first one from the start; a reload's from its
SIGHUP until the Algorithm says it took it (either may have priced a decision then), and only the new
one after that. A reload is checkable when some decision after it is priced by its config and would
have been refused under the one before: counted per reload.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any, Final

import orjson

from actors.pricing.config import Config

EXAMPLES: Final = 5  # broken decisions kept to show, at most
TELLING_SAMPLE: Final = 200  # decisions after each reload also checked against the config before it
SIGNAL_SLACK: Final = 0.001  # printed times are truncated to the millisecond
# The documented rule (README, "what it does"): the soak's config sets exactly these (bench.soak.reloads).
WINDOW: Final = 5
SOLD_FACTOR: Final = Decimal("1.1")
UNSOLD_FACTOR: Final = Decimal("0.9")
CENT: Final = Decimal("0.01")

WindowCheck = Callable[[str, Sequence[str]], bool]  # (book, printed window): rows the feed wrote?


class BadLine(ValueError):
    """A stdout line that is not a decision as the Algorithm prints it with ``--json``."""


@dataclass(frozen=True, slots=True)
class Printed:
    """One decision as printed (``--json``): the text of its money fields, exactly as printed."""

    book: str
    strategy: str
    tick: int
    ts: float
    prices: tuple[str, ...]
    avg: str
    request_id: int
    sold: bool
    price: str
    rule_price: str | None
    guardrail: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.book, self.strategy)


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if type(value) is not str:
        raise BadLine(f"{name}: expected a string, got {value!r:.60}")
    return value


def parse(line: bytes) -> Printed:
    """A printed decision; :class:`BadLine` for anything else."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if type(record) is not dict:
        raise BadLine("not a JSON object")
    tick, request_id, sold = record.get("tick"), record.get("request_id"), record.get("sold")
    prices, guardrail = record.get("prices"), record.get("guardrail")
    if type(tick) is not int or type(request_id) is not int or type(sold) is not bool:
        raise BadLine("tick, request_id, sold: expected two integers and a boolean")
    if type(prices) is not list or not all(type(p) is str for p in prices):
        raise BadLine("prices: expected a list of strings")
    if guardrail is not None and (type(guardrail) is not list or not all(type(g) is str for g in guardrail)):
        raise BadLine("guardrail: expected null or a list of strings")
    try:
        ts = datetime.fromisoformat(_text(record, "ts")).timestamp()
    except ValueError:
        raise BadLine(f"ts: not an ISO time: {record.get('ts')!r:.60}") from None
    rule_price = record.get("rule_price")
    if rule_price is not None and type(rule_price) is not str:
        raise BadLine("rule_price: expected null or a string")
    return Printed(_text(record, "book"), _text(record, "strategy"), tick, ts, tuple(prices),
                   _text(record, "avg_comp_price"), request_id, sold, _text(record, "price"), rule_price,
                   tuple(guardrail or ()))


def _money(texts: tuple[str, ...]) -> tuple[Decimal, ...] | None:
    try:
        values = tuple(Decimal(text) for text in texts)
    except InvalidOperation:
        return None
    return values if all(v.is_finite() for v in values) else None


def rule(window: Sequence[Decimal], sold: bool) -> tuple[Decimal, Decimal]:
    """The documented rule from scratch: the exact mean of the window, and the price -- the mean times
    1.1 after a sale, 0.9 after none, rounded half-up to cents."""
    with localcontext(Context(prec=60)):
        mean = sum(window, Decimal(0)) / len(window)
    # The price from the exact fraction: a mean that does not terminate, rounded, can land just below a
    # half cent the exact price is on.
    exact = Fraction(sum(window, Decimal(0))) * Fraction(SOLD_FACTOR if sold else UNSOLD_FACTOR) / len(window)
    cents = exact * 100
    whole = cents.numerator // cents.denominator
    price = (Decimal(whole + (1 if cents - whole >= Fraction(1, 2) else 0)) / 100).quantize(CENT)
    return mean, price


def broken_rule(d: Printed, config: Config, last: Decimal | None, in_feed: WindowCheck | None = None) -> str | None:
    """Why ``d`` is not what the rule and ``config``'s guardrails make of its window and sold flag
    (``last``: the pair's previous decided price; ``in_feed``: whether a window is rows the feed
    wrote), or None when it is, to the printed character."""
    if d.strategy not in config.strategies:
        return f"strategy {d.strategy!r} is not in the config"
    prices = _money(d.prices)
    if prices is None or len(prices) != WINDOW:
        return f"prices: expected {WINDOW} decimals, got {list(d.prices)}"
    if in_feed is not None and not in_feed(d.book, d.prices):
        return f"prices {list(d.prices)} are not {WINDOW} consecutive rows the feed wrote for {d.book}"
    if d.sold != (d.request_id % 2 == 0):
        return f"sold={d.sold} but request_id {d.request_id} is {'even' if d.request_id % 2 == 0 else 'odd'}"
    mean, rule_price = rule(prices, d.sold)
    avg = _money((d.avg,))
    if avg is None or avg[0] != mean:
        return f"avg_comp_price {d.avg}, the mean of its prices is {mean}"
    guarded = config.guard(d.book, rule_price, last)
    expected_rule = None if guarded.rule_price is None else str(guarded.rule_price)
    if (str(guarded.price), expected_rule, guarded.guardrail) != (d.price, d.rule_price, d.guardrail):
        return (f"printed price {d.price} (rule {d.rule_price}, guardrail {list(d.guardrail)}), the rule and "
                f"guardrails make {guarded.price} (rule {expected_rule}, guardrail {list(guarded.guardrail)}) "
                f"from last price {last}")
    if Decimal(d.price).as_tuple().exponent != -2:
        return f"price {d.price} is not in cents"
    return None


@dataclass(slots=True)
class Epoch:
    """A config and when it may have been in force: from ``sent`` (its SIGHUP; -inf for the first)
    until the Algorithm said it took it (``taken``, None until then), only it after that."""

    config: Config
    sent: float
    taken: float | None
    telling: int = 0  # decisions priced by this config that the one before would have refused
    sampled: int = 0  # decisions after ``taken`` also checked against the config before


class Epochs:
    """The configs in force over the run, by time. Reloads are noted from the soak's thread and the
    events thread, decisions checked on the stdout reader's: under one lock."""

    def __init__(self, first: Config) -> None:
        self.epochs = [Epoch(first, -math.inf, -math.inf)]
        self._lock = threading.Lock()

    def sent(self, config: Config, at: float) -> int:
        """A reload to ``config`` is being asked for at ``at`` (before the file changes); its index."""
        with self._lock:
            self.epochs.append(Epoch(config, at, None))
            return len(self.epochs) - 1

    def taken(self, index: int, at: float) -> None:
        with self._lock:
            epoch = self.epochs[index]
            if epoch.taken is None:
                epoch.taken = at

    def candidates(self, ts: float) -> list[tuple[int, Epoch]]:
        """The epochs whose config may have priced a decision made at ``ts``: the newest one taken by
        then, and every later one already asked for."""
        with self._lock:
            settled = 0
            for i, epoch in enumerate(self.epochs):
                if epoch.taken is not None and epoch.taken <= ts:
                    settled = i
            return [(settled, self.epochs[settled]), *((i, self.epochs[i]) for i in range(settled + 1, len(self.epochs))
                                                       if self.epochs[i].sent <= ts + SIGNAL_SLACK)]

    def before(self, index: int) -> Epoch:
        with self._lock:
            return self.epochs[index - 1]


@dataclass(slots=True)
class PriceCheck:
    """Every printed decision, checked in the order printed; each pair's previous price is its last
    printed one (what the Algorithm remembers, and resumes from the Ledger after a restart)."""

    epochs: Epochs
    in_feed: WindowCheck | None = None
    checked: int = 0
    broken: int = 0
    out_of_order: int = 0  # a pair printing a tick not after its previous one (a duplicate, or a replay)
    examples: list[str] = field(default_factory=list)
    last: dict[tuple[str, str], tuple[int, Decimal]] = field(default_factory=dict)  # bounded by the pairs

    def observe(self, d: Printed) -> None:
        self.checked += 1
        previous = self.last.get(d.key)
        if previous is not None and d.tick <= previous[0]:
            self.out_of_order += 1
            self._example(f"{d.book}/{d.strategy} tick {d.tick} printed after tick {previous[0]}")
        last = previous[1] if previous is not None else None
        candidates = self.epochs.candidates(d.ts)
        reasons = [broken_rule(d, epoch.config, last, self.in_feed) for _, epoch in candidates]
        if all(reason is not None for reason in reasons):
            self.broken += 1
            self._example(f"{d.book}/{d.strategy} tick {d.tick}: {reasons[-1]}")
        elif len(candidates) == 1 and candidates[0][0] > 0:
            self._tell(d, *candidates[0], last)
        try:
            self.last[d.key] = (d.tick, Decimal(d.price))
        except InvalidOperation:
            self.last.pop(d.key, None)

    def _tell(self, d: Printed, index: int, epoch: Epoch, last: Decimal | None) -> None:
        """Whether the config before ``epoch`` would have refused ``d`` (the reload did something); the
        first TELLING_SAMPLE decisions after each reload (only this thread counts them)."""
        if epoch.sampled >= TELLING_SAMPLE:
            return
        epoch.sampled += 1
        if broken_rule(d, self.epochs.before(index).config, last) is not None:
            epoch.telling += 1

    def _example(self, text: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(text)
