"""How a decision is printed: one line on stdout, human or JSON. Pure formatting.

With guardrails configured (``Decision.rule_price`` set), JSON lines also carry ``rule_price`` and
``guardrail`` (null, or the guardrails that moved the price), and a human line appends them when a
guardrail moved the price; without guardrails both are exactly what they were before guardrails.

JSON lines are made with orjson (about 8x faster than the standard library here, README
*Performance*), byte for byte as ``json.dumps(..., separators=(",", ":"))`` would make them: when the
book or strategy holds non-ASCII characters the standard library is used, since it escapes them
(``\\u00e9``) where orjson writes UTF-8.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

import orjson

from transport.protocol import Decision


@functools.lru_cache(maxsize=64)
def _iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds; cached (bounded) because a batch's decisions share one time."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_human(d: Decision) -> str:
    prices = " ".join(str(p) for p in d.prices)
    return (f"{_iso(d.ts)} tick={d.tick} book={d.book} strategy={d.strategy} "
            f"avg_comp_price={d.avg_comp_price} sold={'yes' if d.sold else 'no'} price={d.price} "
            f"request_id={d.request_id} prices=[{prices}]"
            + (f" rule_price={d.rule_price} guardrail={','.join(d.guardrail)}" if d.guardrail else ""))


def _fields(d: Decision) -> dict[str, Any]:
    record: dict[str, Any] = {
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
    return record


def format_json(d: Decision) -> str:
    return format_json_bytes(d).decode()


def format_json_bytes(d: Decision) -> bytes:
    """The JSON line (without its newline) as UTF-8 bytes, ready to write."""
    if d.book.isascii() and d.strategy.isascii() and all(name.isascii() for name in d.guardrail):
        return orjson.dumps(_fields(d))
    return json.dumps(_fields(d), separators=(",", ":")).encode()
