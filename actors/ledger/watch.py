"""What the Ledger sees in the stream of decisions (pure: rows and a clock in, counters and alert changes
out): the business tallies the overview and ``/metrics`` show, and the detectors of the alerts of
:mod:`actors.alert_rules`.

The Ledger sees every decision of every worker, so it watches each pair across worker restarts and
each strategy across workers. Fed each batch's rows as they arrive (:meth:`Watch.observe`), and a
clock once a second (:meth:`Watch.sweep`). A decision not newer than the last one seen of its pair
(a resent batch, one that crossed a newer) is ignored: nothing is counted twice.

- Tallies (counters): ``prices_up``/``_down``/``_same`` (a pair's price against its previous
  decision), ``competitor_up``/``_down``/``_same`` (the competitor's average likewise),
  ``guardrail_<name>`` (decisions each guardrail moved), ``lag_ms`` (how late the newest decision
  of the last batch arrived).
- Alerts (gauges ``alerts_active_<name>``, counters ``alerts_raised``, ``alerts_cleared``):
  ``price_war`` both fell on ``price_war_ticks`` decisions of a pair in a row, cleared by the first
  decision where they did not both fall; ``floor_pinned`` the floor set a pair's price for
  ``floor_pinned_seconds``, cleared by a decision it did not set; ``stale_competitor`` a pair's
  competitor prices unchanged for ``stale_competitor_seconds``, cleared when they change;
  ``guardrails_most`` guardrails other than the cosmetic ``ending`` moved ``guardrail_share_pct`` %
  of a strategy's last ``guardrail_share_decisions`` decisions, cleared 10 points below; ``ledger_lag``
  decisions arrived ``ledger_lag_seconds`` late, or the Ledger refused a batch within that time.

Bounded: pairs watched (:data:`PAIRS_MAX`, the oldest forgotten first, counted), strategies
(:data:`STRATEGIES_MAX`), guardrail names (:data:`GUARDRAIL_NAMES_MAX`, the rest as ``other``).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from actors.alert_rules import ALERTS, Thresholds
from transport import limits
from transport.ledger_rows import DecisionRow

PAIRS_MAX: Final = limits.BOOKS_MAX
STRATEGIES_MAX: Final = 256
GUARDRAIL_NAMES_MAX: Final = 16
SHARE_HYSTERESIS: Final = 10.0  # percentage points below the threshold that clear guardrails_most
COSMETIC: Final = frozenset({"ending"})  # moves a price by cents to end it in .99: not the rule overridden
_WAR: Final = 1  # PairState.active bits
_FLOOR: Final = 2
_STALE: Final = 4
_PAIR_BITS: Final = (("price_war", _WAR), ("floor_pinned", _FLOOR), ("stale_competitor", _STALE))
SYSTEM: Final = ("", "")  # the (book, strategy) of a system-wide alert
_NEVER: Final = float("-inf")  # a PairState's ts before its first decision (known from an open alert only)


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert raised or cleared: ``name`` (:data:`actors.alert_rules.ALERTS`), what it is about
    (book and strategy; empty for a strategy's book, both empty for the system), ``since`` when the
    condition began, ``at`` when it was raised or cleared, and a sentence of detail."""

    name: str
    book: str
    strategy: str
    raised: bool
    since: float
    at: float
    detail: str

    def as_json(self) -> dict[str, object]:
        return {"alert": self.name, "title": ALERTS[self.name].title, "state": "raised" if self.raised else "cleared",
                "book": self.book or None, "strategy": self.strategy or None, "since": self.since, "at": self.at,
                "detail": self.detail, "advice": ALERTS[self.name].advice}


class PairState:
    """What is remembered of one pair: its newest decision seen and each detector's progress."""

    __slots__ = ("active", "avg", "fall_since", "falling", "floor_since", "price", "ts", "window", "window_since")

    def __init__(self, row: DecisionRow, price: float, avg: float) -> None:
        self.ts = row.ts
        self.price = price
        self.avg = avg
        self.window = hash(row.prices)  # the competitor's prices, as the decision's text
        self.window_since = row.ts
        self.falling = 0  # decisions in a row where our price and the competitor's average both fell
        self.fall_since = row.ts  # the first of them
        self.floor_since = row.ts if _moved_by(row, "floor") else -1.0
        self.active = 0  # the pair's alerts raised now (bits)


class StrategyShare:
    """A strategy's last decisions: whether guardrails (other than cosmetic ones) moved each."""

    __slots__ = ("active", "moved", "recent", "since")

    def __init__(self, size: int) -> None:
        self.recent: deque[bool] = deque(maxlen=max(1, size))
        self.moved = 0
        self.active = False
        self.since = 0.0


def _moved_by(row: DecisionRow, name: str) -> bool:
    return row.guardrail is not None and f'"{name}"' in row.guardrail


def _names(guardrail: str) -> list[str]:
    try:
        names = json.loads(guardrail)
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class Watch:
    def __init__(self, thresholds: Thresholds, pairs_max: int = PAIRS_MAX) -> None:
        self.thresholds = thresholds
        self._pairs: dict[tuple[str, str], PairState] = {}
        self._pairs_max = pairs_max
        self._strategies: dict[str, StrategyShare] = {}
        self._lag = 0.0
        self._refusals = 0
        self._refused_at = float("-inf")
        self._lag_active = False
        self._lag_since = 0.0
        self._guardrails: set[str] = set()
        self.counters: dict[str, int] = {
            "prices_up": 0, "prices_down": 0, "prices_same": 0, "competitor_up": 0, "competitor_down": 0,
            "competitor_same": 0, "pairs_watched": 0, "watch_evicted": 0, "alerts_raised": 0, "alerts_cleared": 0,
            "lag_ms": 0, **{f"alerts_active_{name}": 0 for name in ALERTS},
        }

    # --- decisions ---------------------------------------------------------------------------------

    def observe(self, rows: Iterable[DecisionRow], now: float) -> list[AlertChange]:
        """One batch's rows, as received at ``now``; the alerts they raise or clear."""
        changes: list[AlertChange] = []
        newest = 0.0
        sharing = self.thresholds.enabled("guardrails_most")
        pairs = self._pairs
        for row in rows:
            if row.ts > newest:
                newest = row.ts
            key = (row.book, row.strategy)
            state = pairs.get(key)
            if state is not None and row.ts <= state.ts:
                continue  # seen already, or older than what was seen
            if row.guardrail is not None:
                self._tally_guardrails(row)
            if sharing:
                self._share(row, changes)
            if state is None:
                self._new_pair(key, row)
                continue
            self._step(key, state, row, changes)
        if newest:
            self._lag = max(0.0, now - newest)
            self.counters["lag_ms"] = int(self._lag * 1000)
        return changes

    def _new_pair(self, key: tuple[str, str], row: DecisionRow) -> None:
        if len(self._pairs) >= self._pairs_max:
            old_key, old = next(iter(self._pairs.items()))
            del self._pairs[old_key]
            self.counters["watch_evicted"] += 1
            for name, bit in _PAIR_BITS:  # forgotten: its alerts no longer counted as active here
                if old.active & bit:
                    self.counters[f"alerts_active_{name}"] -= 1
        self._pairs[key] = PairState(row, float(row.price), float(row.avg_comp_price))
        self.counters["pairs_watched"] = len(self._pairs)

    def _step(self, key: tuple[str, str], s: PairState, row: DecisionRow, changes: list[AlertChange]) -> None:
        t = self.thresholds
        price, avg = float(row.price), float(row.avg_comp_price)
        window = hash(row.prices)
        if s.ts == _NEVER:  # known from an open alert only: this decision is the baseline
            s.window = window
            if not s.active & _STALE:
                s.window_since = row.ts
        else:
            self.counters["prices_up" if price > s.price else "prices_down" if price < s.price else "prices_same"] += 1
            self.counters["competitor_up" if avg > s.avg else "competitor_down" if avg < s.avg
                          else "competitor_same"] += 1
            s.falling = s.falling + 1 if price < s.price and avg < s.avg else 0
            if s.falling == 1:
                s.fall_since = row.ts
        s.price, s.avg, s.ts = price, avg, row.ts
        if window != s.window:
            s.window, s.window_since = window, row.ts
        at_floor = row.guardrail is not None and '"floor"' in row.guardrail  # _moved_by(row, "floor"), inlined
        if not at_floor:
            s.floor_since = -1.0
        elif s.floor_since < 0:
            s.floor_since = row.ts
        # Each detector's detail is written only when its alert changes (rarely): formatting three
        # sentences per decision was a fifth of the Ledger's event-loop time per batch.
        book, strategy = key
        war = t.price_war_ticks > 0 and s.falling >= t.price_war_ticks
        if war != bool(s.active & _WAR):
            self._flip(s, _WAR, "price_war", war, book, strategy, s.fall_since, row.ts, changes,
                       f"our price ({row.price}) and the competitor's average fell together on {s.falling} "
                       "decisions in a row" if war else "our price or the competitor's average stopped falling")
        pinned = t.floor_pinned_seconds > 0 and s.floor_since >= 0 and row.ts - s.floor_since >= t.floor_pinned_seconds
        if pinned != bool(s.active & _FLOOR):
            self._flip(s, _FLOOR, "floor_pinned", pinned, book, strategy, s.floor_since, row.ts, changes,
                       f"the floor has set the price ({row.price}) for {_minutes(row.ts - s.floor_since)}" if pinned
                       else f"the price ({row.price}) is off its floor")
        stale = t.stale_competitor_seconds > 0 and row.ts - s.window_since >= t.stale_competitor_seconds
        if stale != bool(s.active & _STALE):
            self._flip(s, _STALE, "stale_competitor", stale, book, strategy, s.window_since, row.ts, changes,
                       f"the competitor's prices have not changed for {_minutes(row.ts - s.window_since)}" if stale
                       else "the competitor's prices changed")

    def _flip(self, s: PairState, bit: int, name: str, on: bool, book: str, strategy: str, since: float, at: float,
              changes: list[AlertChange], detail: str) -> None:
        s.active ^= bit
        changes.append(self._changed(name, book, strategy, on, since if on else at, at, detail))

    def _changed(self, name: str, book: str, strategy: str, raised: bool, since: float, at: float,
                 detail: str) -> AlertChange:
        self.counters[f"alerts_active_{name}"] += 1 if raised else -1
        self.counters["alerts_raised" if raised else "alerts_cleared"] += 1
        return AlertChange(name, book, strategy, raised, since, at, detail)

    def _tally_guardrails(self, row: DecisionRow) -> None:
        if row.guardrail is None:
            return
        for name in _names(row.guardrail):
            if name not in self._guardrails:
                if len(self._guardrails) >= GUARDRAIL_NAMES_MAX or not (name.isidentifier() and name.islower()):
                    name = "other"
                self._guardrails.add(name)
            counter = f"guardrail_{name}"
            self.counters[counter] = self.counters.get(counter, 0) + 1

    def _share(self, row: DecisionRow, changes: list[AlertChange]) -> None:
        """A decision of a strategy whose guardrails_most alert is enabled (the caller checks)."""
        t = self.thresholds
        share = self._strategies.get(row.strategy)
        if share is None:
            if len(self._strategies) >= STRATEGIES_MAX:
                return
            share = self._strategies[row.strategy] = StrategyShare(t.guardrail_share_decisions)
        moved = row.guardrail is not None and any(n not in COSMETIC for n in _names(row.guardrail))
        if len(share.recent) == share.recent.maxlen:
            share.moved -= share.recent[0]
        share.recent.append(moved)
        share.moved += moved
        if len(share.recent) < (share.recent.maxlen or 0):
            return  # judged on a whole window only (a restored alert waits for one too)
        pct = 100.0 * share.moved / len(share.recent)
        # Cleared only once well below the threshold: a share hovering around it raises it once.
        on = pct >= t.guardrail_share_pct - (SHARE_HYSTERESIS if share.active else 0.0)
        if on == share.active:
            return
        share.active = on
        share.since = row.ts
        detail = (f"guardrails moved {pct:.0f}% of its last {len(share.recent)} decisions" if on else
                  f"guardrails move {pct:.0f}% of its decisions now")
        changes.append(self._changed("guardrails_most", "", row.strategy, on, row.ts, row.ts, detail))

    # --- the clock ---------------------------------------------------------------------------------

    def sweep(self, now: float, refusals: int) -> list[AlertChange]:
        """Once a second: ``refusals`` is how many batches the Ledger has refused so far (busy, or its
        database unavailable)."""
        t = self.thresholds
        if refusals > self._refusals:
            self._refused_at = now
        self._refusals = refusals
        late = self._lag >= t.ledger_lag_seconds
        refused = now - self._refused_at < t.ledger_lag_seconds
        on = t.ledger_lag_seconds > 0 and (late or refused)
        if on == self._lag_active:
            return []
        self._lag_active = on
        if on:
            self._lag_since = now
            detail = (f"decisions arrive {self._lag:.0f} s after they were decided" if late else
                      "the Ledger refused batches (busy, or its database unavailable): the workers send them again")
        else:
            detail = "decisions arrive on time and are kept"
        return [self._changed("ledger_lag", *SYSTEM, on, self._lag_since if on else now, now, detail)]

    # --- start and reload --------------------------------------------------------------------------

    def restore(self, active: Sequence[AlertChange]) -> None:
        """Alerts the database says are still raised (a restarted Ledger): counted as active again, and
        a pair's or strategy's state set so that the next decision that ends the condition clears it.
        One this watch raised itself meanwhile (decisions came before the database answered) is not
        counted twice."""
        for alert in active:
            if alert.name == "ledger_lag":
                if self._lag_active:
                    continue
                self._lag_active, self._lag_since = True, alert.since
            elif alert.name == "guardrails_most":
                share = self._strategies.setdefault(alert.strategy,
                                                    StrategyShare(self.thresholds.guardrail_share_decisions))
                if share.active:
                    continue
                share.active, share.since = True, alert.since
            else:
                bit = dict(_PAIR_BITS).get(alert.name)
                key = (alert.book, alert.strategy)
                state = self._pairs.get(key)
                if bit is None or (state is None and len(self._pairs) >= self._pairs_max):
                    continue
                if state is None:
                    state = self._pairs[key] = _restored(alert)
                elif state.active & bit:
                    continue
                state.active |= bit
                if bit == _WAR:
                    state.falling = max(state.falling, self.thresholds.price_war_ticks)
                    state.fall_since = alert.since
                elif bit == _FLOOR:
                    state.floor_since = alert.since
                else:
                    state.window_since = alert.since
            self.counters[f"alerts_active_{alert.name}"] += 1
        self.counters["pairs_watched"] = len(self._pairs)

    def retune(self, thresholds: Thresholds, now: float) -> list[AlertChange]:
        """New thresholds (a reload): alerts they turn off are cleared now; the others apply from the
        next decision."""
        self.thresholds = thresholds
        changes: list[AlertChange] = []
        for (book, strategy), s in self._pairs.items():
            for name, bit in _PAIR_BITS:
                if s.active & bit and not thresholds.enabled(name):
                    s.active ^= bit
                    changes.append(self._changed(name, book, strategy, False, now, now, "alert turned off"))
        for strategy, share in list(self._strategies.items()):
            if share.active and not thresholds.enabled("guardrails_most"):
                changes.append(self._changed("guardrails_most", "", strategy, False, now, now, "alert turned off"))
            if share.recent.maxlen != thresholds.guardrail_share_decisions:
                del self._strategies[strategy]  # a new window size: counted afresh
        if self._lag_active and not thresholds.enabled("ledger_lag"):
            self._lag_active = False
            changes.append(self._changed("ledger_lag", *SYSTEM, False, now, now, "alert turned off"))
        return changes


def _restored(alert: AlertChange) -> PairState:
    """A pair known only from an open alert: no decision seen yet (the next one is its first)."""
    state = PairState.__new__(PairState)
    state.ts, state.price, state.avg, state.window = _NEVER, 0.0, 0.0, 0
    state.window_since, state.falling, state.floor_since, state.active = alert.since, 0, -1.0, 0
    state.fall_since = alert.since
    return state
