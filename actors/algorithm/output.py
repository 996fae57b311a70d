"""How a decision is printed: one line on stdout, human or JSON. Pure formatting."""

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
            f"request_id={d.request_id} prices=[{prices}]")


def format_json(d: Decision) -> str:
    return json.dumps({
        "ts": _iso(d.ts),
        "tick": d.tick,
        "book": d.book,
        "strategy": d.strategy,
        "prices": [str(p) for p in d.prices],
        "avg_comp_price": str(d.avg_comp_price),
        "request_id": d.request_id,
        "sold": d.sold,
        "price": str(d.price),
    }, separators=(",", ":"))
