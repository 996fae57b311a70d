"""The batched calls, pure: ``POST /register-requests`` and ``POST /request-data`` bodies in, response
bytes out. No I/O; the id allocator is a plain object passed in.

An envelope that cannot be read (not JSON, not an object, the list missing, empty or too long) is a
:class:`BadRequest` for the whole call; a bad item only costs its own result, ``{"error": "item I: ..."}``
at its index, the others are served. Responses are built as bytes directly (no dict per item, no JSON
encoder): a batch of 500 items is on the hot path of a 50,000 decisions/s system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from actors.api_server.request_ids import MAX_ID, IdAllocator
from actors.api_server.requests import BadRequest, is_plain_valid, load_json, parse_fields
from transport.limits import API_BATCH_MAX

UNKNOWN_PAST: Final = "unknown id (issued before this server started, or expired)"
UNKNOWN_FUTURE: Final = "unknown id (not issued yet)"
_NOT_AN_OBJECT: Final = "must be a JSON object {book, price, strategy}"
_MALFORMED_ID: Final = f"malformed id: expected an integer within 0..{MAX_ID}"


def _items(data: Any, key: str, what: str) -> list[Any]:
    """The list under ``key`` of a batch body, 1..API_BATCH_MAX long, or BadRequest."""
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    items = data.get(key)
    if not isinstance(items, list):
        raise BadRequest(f'body must have "{key}": a list of {what}')
    if not items:
        raise BadRequest(f'"{key}" is empty: send 1..{API_BATCH_MAX} {what}')
    if len(items) > API_BATCH_MAX:
        raise BadRequest(f'"{key}" has {len(items)} entries: at most {API_BATCH_MAX} per call')
    return items


def _error_item(message: str) -> bytes:
    return b'{"error":%s}' % json.dumps(message).encode()


@dataclass(frozen=True, slots=True)
class Registrations:
    """A parsed ``/register-requests`` body: how many items, and the error of each bad one by index."""

    count: int
    errors: dict[int, str]

    @property
    def valid(self) -> int:
        return self.count - len(self.errors)


def parse_registrations(body: bytes) -> Registrations:
    """Validate every item of a ``/register-requests`` body with the single endpoint's rules."""
    items = _items(load_json(body), "items", "{book, price, strategy} objects")
    errors: dict[int, str] = {}
    for index, item in enumerate(items):
        if type(item) is not dict:
            errors[index] = f"item {index}: {_NOT_AN_OBJECT}"
        elif not is_plain_valid(item):
            try:  # the full rules: a valid item of another shape (a number price), or the exact error
                parse_fields(item)
            except BadRequest as e:
                errors[index] = f"item {index}: {e}"
    return Registrations(len(items), errors)


def registration_results(batch: Registrations, first_id: int) -> bytes:
    """The response body: the valid items get ``first_id``, ``first_id + 1``, ... in order."""
    if not batch.errors:
        results = [b'{"id":%d}' % n for n in range(first_id, first_id + batch.count)]
    else:
        results = []
        next_id = first_id
        for index in range(batch.count):
            message = batch.errors.get(index)
            if message is None:
                results.append(b'{"id":%d}' % next_id)
                next_id += 1
            else:
                results.append(_error_item(message))
    return b'{"results":[' + b",".join(results) + b"]}"


def parse_lookups(body: bytes) -> list[Any]:
    """The ``ids`` of a ``/request-data`` body (each checked later, per item), or BadRequest."""
    return _items(load_json(body, parse_float=float), "ids", "request ids")


@dataclass(slots=True)
class LookupTally:
    sold: int = 0
    not_sold: int = 0
    unknown: int = 0
    malformed: int = 0


def lookup_results(ids: list[Any], allocator: IdAllocator) -> tuple[bytes, LookupTally]:
    """The response body for ``ids`` (sold = even, as the single endpoint) and what it held."""
    oldest, next_id = allocator.oldest_known, allocator.next_id
    tally = LookupTally()
    results = []
    for index, request_id in enumerate(ids):
        if type(request_id) is int and oldest <= request_id < next_id:  # bool is not an id
            if request_id & 1:
                results.append(b'{"id":%d,"sold":false}' % request_id)
                tally.not_sold += 1
            else:
                results.append(b'{"id":%d,"sold":true}' % request_id)
                tally.sold += 1
        elif type(request_id) is not int or not 0 <= request_id <= MAX_ID:
            results.append(_error_item(f"item {index}: {_MALFORMED_ID}"))
            tally.malformed += 1
        else:
            why = UNKNOWN_FUTURE if request_id >= next_id else UNKNOWN_PAST
            results.append(b'{"id":%d,"error":"item %d: %s"}' % (request_id, index, why.encode()))
            tally.unknown += 1
    return b'{"results":[' + b",".join(results) + b"]}", tally
