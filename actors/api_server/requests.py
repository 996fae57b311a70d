"""What the APIServer accepts in a request body, pure: parsing and validation, no I/O. The bounds come
from :mod:`transport.limits`, the same the CSV parser and the Algorithm use, so every price the
Algorithm can compute is accepted here."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Final

from transport.limits import (
    BOOK_ID_MAX_LEN,
    PRICE_DECIMALS,
    PRICE_MAX,
    PRICE_MAX_INTEGER_DIGITS,
    PRICE_MIN,
    STRATEGY_NAME_MAX_LEN,
)

_PRICE_RE: Final = re.compile(rf"[0-9]{{1,{PRICE_MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{1,{PRICE_DECIMALS}}})?")
_BAD_BOOK: Final = f"book must be a non-empty string of at most {BOOK_ID_MAX_LEN} characters"
_BAD_STRATEGY: Final = f"strategy must be a string of at most {STRATEGY_NAME_MAX_LEN} characters"
_BAD_PRICE_TEXT: Final = (f"price must be a decimal string like '12.34' (at most {PRICE_DECIMALS} decimal "
                          "places)")
_BAD_PRICE_RANGE: Final = f"price must be within {PRICE_MIN}..{PRICE_MAX}"


class BadRequest(ValueError):
    """A malformed request body; the message goes back to the client."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def load_json(body: bytes, parse_float: Any = Decimal) -> Any:
    """``body`` as JSON, floats as Decimal (never a binary float) and NaN/Infinity refused, or
    BadRequest."""
    try:
        return json.loads(body, parse_float=parse_float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise BadRequest(f"body is not valid JSON: {e}") from None


def parse_price(value: object) -> Decimal:
    if isinstance(value, str):
        # A regex, not Decimal(): Decimal() also takes 'NaN', '1e3', '1_000' and surrounding spaces.
        if not _PRICE_RE.fullmatch(value):
            raise BadRequest(_BAD_PRICE_TEXT)
        price = Decimal(value)
        if not PRICE_MIN <= price <= PRICE_MAX:  # the regex already bounds the decimal places
            raise BadRequest(_BAD_PRICE_RANGE)
        return price
    if isinstance(value, Decimal):
        price = value
    elif isinstance(value, int) and not isinstance(value, bool):
        price = Decimal(value)
    else:
        raise BadRequest("price must be a decimal string or a number")
    if not price.is_finite() or not PRICE_MIN <= price <= PRICE_MAX:
        raise BadRequest(_BAD_PRICE_RANGE)
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_DECIMALS:
        raise BadRequest(f"price has more than {PRICE_DECIMALS} decimal places")
    return price


def parse_fields(data: dict[str, Any]) -> tuple[str, Decimal, str | None]:
    """(book, price, strategy) from one registration's fields (a single body or a batch item), or
    BadRequest. Unknown fields are ignored."""
    book = data.get("book")
    if not isinstance(book, str) or not book.strip() or len(book) > BOOK_ID_MAX_LEN:
        raise BadRequest(_BAD_BOOK)
    if "price" not in data:
        raise BadRequest("price is missing")
    price = parse_price(data["price"])
    strategy = data.get("strategy")
    if strategy is not None and (not isinstance(strategy, str) or len(strategy) > STRATEGY_NAME_MAX_LEN):
        raise BadRequest(_BAD_STRATEGY)
    return book, price, strategy


def is_plain_valid(data: dict[str, Any]) -> bool:
    """True for the common valid item -- book, strategy and price all strings -- checked inline: the
    batched endpoint's fast path (no call per field, no exception). Anything else, valid or not, is
    False: the caller then asks :func:`parse_fields`, the one source of the rules and messages. Both
    agree on every input (property-tested)."""
    book = data.get("book")
    price = data.get("price")
    strategy = data.get("strategy")
    return (type(book) is str and 0 < len(book) <= BOOK_ID_MAX_LEN and not book.isspace()
            and type(price) is str and _PRICE_RE.fullmatch(price) is not None
            and PRICE_MIN <= Decimal(price) <= PRICE_MAX
            and (strategy is None or (type(strategy) is str and len(strategy) <= STRATEGY_NAME_MAX_LEN)))


def parse_registration(body: bytes) -> tuple[str, Decimal, str | None]:
    """(book, price, strategy) from a /register-request body, or BadRequest."""
    data = load_json(body)
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return parse_fields(data)
