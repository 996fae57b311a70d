"""How a decision is printed: one line on stdout, human or JSON. Pure formatting.

Every line carries the ``factor`` applied. With guardrails configured (``Decision.rule_price`` set),
JSON lines also carry ``rule_price``, ``guardrail`` (null, or the guardrails that moved the price),
``previous_price`` (the price a step is measured from; null on a pair's first decision), ``floor``
and ``ceiling`` (null where not set); a human line appends them when a guardrail moved the price. So
a line explains its price: the window's mean times ``factor`` is ``rule_price``, which the guardrails
take toward ``previous_price`` within ``floor`` and ``ceiling``.

JSON lines are made with orjson (about 8x faster than the standard library here, README
*Performance*), byte for byte as ``json.dumps(..., separators=(",", ":"))`` would make them: when the
book or strategy holds non-ASCII characters the standard library is used, since it escapes them
(``\\u00e9``) where orjson writes UTF-8.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from transport.protocol import Decision


@functools.lru_cache(maxsize=64)
def _iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds; cached (bounded) because a batch's decisions share one time."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


def format_human(d: Decision) -> str:
    prices = " ".join(str(p) for p in d.prices)
    line = (f"{_iso(d.ts)} tick={d.tick} book={d.book} strategy={d.strategy} "
            f"avg_comp_price={d.avg_comp_price} sold={'yes' if d.sold else 'no'} price={d.price} "
            f"request_id={d.request_id} prices=[{prices}]")
    if d.factor is not None:
        line += f" factor={d.factor}"
    if d.guardrail:
        line += (f" rule_price={d.rule_price} guardrail={','.join(d.guardrail)} "
                 f"previous_price={_text(d.previous_price)} floor={_text(d.floor)} ceiling={_text(d.ceiling)}")
    return line


def _json_money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


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
    if d.factor is not None:
        record["factor"] = str(d.factor)
    if d.rule_price is not None:  # guardrails configured: every line says what the rule said, and why
        record["rule_price"] = str(d.rule_price)
        record["guardrail"] = list(d.guardrail) or None
        record["previous_price"] = _json_money(d.previous_price)
        record["floor"] = _json_money(d.floor)
        record["ceiling"] = _json_money(d.ceiling)
    return record


def format_json(d: Decision) -> str:
    return format_json_bytes(d).decode()


def format_json_bytes(d: Decision) -> bytes:
    """The JSON line (without its newline) as UTF-8 bytes, ready to write."""
    if d.book.isascii() and d.strategy.isascii() and all(name.isascii() for name in d.guardrail):
        return orjson.dumps(_fields(d))
    return json.dumps(_fields(d), separators=(",", ":")).encode()
