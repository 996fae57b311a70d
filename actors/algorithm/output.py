"""How a decision is printed: one line on stdout, human or JSON. Pure formatting.

With guardrails configured (``Decision.rule_price`` set), JSON lines also carry ``rule_price`` and
``guardrail`` (null, or the guardrails that moved the price), and a human line appends them when a
guardrail moved the price; without guardrails both are exactly what they were before guardrails."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from transport.protocol import Decision


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_human(d: Decision) -> str:
    prices = " ".join(str(p) for p in d.prices)
    return (f"{_iso(d.ts)} tick={d.tick} book={d.book} strategy={d.strategy} "
            f"avg_comp_price={d.avg_comp_price} sold={'yes' if d.sold else 'no'} price={d.price} "
            f"request_id={d.request_id} prices=[{prices}]"
            + (f" rule_price={d.rule_price} guardrail={','.join(d.guardrail)}" if d.guardrail else ""))


def format_json(d: Decision) -> str:
    record = {
        "ts": _iso(d.ts),
        "tick": d.tick,
        "book": d.book,
        "strategy": d.strategy,
        "prices": [str(p) for p in d.prices],
        "avg_comp_price": str(d.avg_comp_price),
        "request_id": d.request_id,
        "sold": d.sold,
        "price": str(d.price),
    }
    if d.rule_price is not None:  # guardrails configured: every line says what the rule said
        record["rule_price"] = str(d.rule_price)
        record["guardrail"] = list(d.guardrail) or None
    return json.dumps(record, separators=(",", ":"))
