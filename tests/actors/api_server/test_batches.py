"""The batched calls' rules, pure: envelopes, per-item errors with their index, the same item rules as
the single endpoint, ids in order, and response bytes that are valid JSON of the contract's shape."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.api_server.batches import (
    UNKNOWN_FUTURE,
    UNKNOWN_PAST,
    Registrations,
    lookup_results,
    parse_lookups,
    parse_registrations,
    registration_results,
)
from actors.api_server.request_ids import MAX_ID, IdAllocator
from actors.api_server.requests import BadRequest, is_plain_valid, parse_fields, parse_registration
from transport.limits import API_BATCH_MAX


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def item(book: str = "B1", price: Any = "12.34", strategy: str | None = "undercut") -> dict[str, Any]:
    return {"book": book, "price": price, "strategy": strategy}


def test_valid_items_get_consecutive_ids_in_order() -> None:
    batch = parse_registrations(body({"items": [item(), item(price=7), item(price="0.01", strategy=None)]}))
    assert batch == Registrations(3, {})
    assert json.loads(registration_results(batch, 1000)) == {"results": [{"id": 1000}, {"id": 1001}, {"id": 1002}]}


def test_bad_items_get_their_error_with_their_index_and_the_others_their_ids() -> None:
    items = [item(), item(price="0"), "not an object", item(book=""), item(), item(price="1e3")]
    batch = parse_registrations(body({"items": items}))
    assert batch.count == 6 and batch.valid == 2 and sorted(batch.errors) == [1, 2, 3, 5]
    results = json.loads(registration_results(batch, 50))["results"]
    assert len(results) == 6
    assert results[0] == {"id": 50} and results[4] == {"id": 51}
    assert results[1]["error"].startswith("item 1: price must be within")
    assert results[2]["error"].startswith("item 2: must be a JSON object")
    assert results[3]["error"].startswith("item 3: book must be")
    assert results[5]["error"].startswith("item 5: price must be a decimal string")
    assert all(set(r) == {"error"} for i, r in enumerate(results) if i in batch.errors)


def test_a_batch_of_only_bad_items_is_answered_item_by_item() -> None:
    batch = parse_registrations(body({"items": [{}, 5]}))
    assert batch.valid == 0
    assert [set(r) for r in json.loads(registration_results(batch, 0))["results"]] == [{"error"}, {"error"}]


BAD_ENVELOPES = [b"", b"not json", b"{", b"\xff", b"[]", b"[1]", b'"items"', b"null", b"{}", b'{"items": {}}',
                 b'{"items": null}', b'{"items": "x"}', b'{"items": []}', b'{"items": [NaN]}',
                 body({"items": [item()] * (API_BATCH_MAX + 1)})]


@pytest.mark.parametrize("raw", BAD_ENVELOPES)
def test_a_malformed_envelope_fails_the_whole_call(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_registrations(raw)


def test_envelope_errors_say_what_is_wrong() -> None:
    with pytest.raises(BadRequest, match="is empty"):
        parse_registrations(b'{"items": []}')
    with pytest.raises(BadRequest, match=f"at most {API_BATCH_MAX}"):
        parse_registrations(body({"items": [item()] * (API_BATCH_MAX + 1)}))
    with pytest.raises(BadRequest, match='"ids"'):
        parse_lookups(b'{"items": [1]}')
    assert parse_registrations(body({"items": [item()] * API_BATCH_MAX})).valid == API_BATCH_MAX


# Items as JSON values: valid ones, near-misses and junk, so both outcomes are common.
json_scalars = st.none() | st.booleans() | st.integers(-10, 10**9) | st.text(max_size=12) | st.sampled_from(
    ["12.34", "0.01", "10000000", "10000000.01", "1.1234567", "NaN", " 1", "1e3", "١٢", "0", "5"])
fields = st.fixed_dictionaries({}, optional={"book": st.text(max_size=3) | st.just("x" * 129) | json_scalars,
                                             "price": json_scalars, "strategy": json_scalars | st.just("s" * 65),
                                             "extra": json_scalars})
items = fields | json_scalars | st.lists(json_scalars, max_size=2)


prices = st.decimals(min_value=0, max_value=20_000_000, places=7, allow_nan=False, allow_infinity=False)
plain_items = st.fixed_dictionaries({"book": st.text(max_size=130), "price": prices.map(str) | json_scalars},
                                    optional={"strategy": st.none() | st.text(max_size=66)})


@given(plain_items)
def test_the_fast_path_agrees_with_the_rules(value: dict[str, Any]) -> None:
    try:
        parse_fields(value)
        valid = True
    except BadRequest:
        valid = False
    assert is_plain_valid(value) == (valid and isinstance(value["price"], str))


@given(st.lists(items, min_size=1, max_size=30))
def test_each_item_follows_the_single_endpoints_rules(values: list[Any]) -> None:
    batch = parse_registrations(body({"items": values}))
    for index, value in enumerate(values):
        try:
            parse_registration(body(value))
            single_ok = True
        except BadRequest:
            single_ok = False
        assert (index not in batch.errors) == single_ok, (value, batch.errors.get(index))
    results = json.loads(registration_results(batch, 7))["results"]
    assert len(results) == len(values)
    ids = [r["id"] for r in results if "id" in r]
    assert ids == list(range(7, 7 + batch.valid))
    assert all(r["error"].startswith(f"item {i}: ") for i, r in enumerate(results) if "error" in r)


@given(st.binary(max_size=300))
def test_any_bytes_give_a_result_or_a_bad_request(raw: bytes) -> None:
    for parse in (parse_registrations, parse_lookups):
        with contextlib.suppress(BadRequest):  # the only exception allowed
            parse(raw)


@given(st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["items", "ids", "book", "price"]), inner, max_size=3),
                    max_leaves=20))
def test_any_json_gives_a_result_or_a_bad_request(value: Any) -> None:
    raw = body(value)
    try:
        batch = parse_registrations(raw)
    except BadRequest:
        pass
    else:
        assert len(json.loads(registration_results(batch, 0))["results"]) == batch.count
    try:
        ids = parse_lookups(raw)
    except BadRequest:
        pass
    else:
        results, _ = lookup_results(ids, IdAllocator(10))
        assert len(json.loads(results)["results"]) == len(ids)


def allocator(start: int, issued: int, retention: int = 1_000_000) -> IdAllocator:
    ids = IdAllocator(start, retention)
    if issued:
        ids.allocate_many(issued)
    return ids


def test_lookups_answer_sold_by_parity_and_unknown_per_item() -> None:
    ids = allocator(100, 10)  # issued 100..109
    raw, tally = lookup_results(parse_lookups(body({"ids": [100, 101, 99, 110, 100]})), ids)
    assert json.loads(raw) == {"results": [
        {"id": 100, "sold": True}, {"id": 101, "sold": False},
        {"id": 99, "error": f"item 2: {UNKNOWN_PAST}"}, {"id": 110, "error": f"item 3: {UNKNOWN_FUTURE}"},
        {"id": 100, "sold": True}]}
    assert (tally.sold, tally.not_sold, tally.unknown, tally.malformed) == (2, 1, 2, 0)


@pytest.mark.parametrize("bad", [True, False, None, "100", 100.0, 1.5, -1, MAX_ID + 1, 2**70, [100], {"id": 100}])
def test_malformed_ids_are_per_item_errors(bad: Any) -> None:
    raw, tally = lookup_results(parse_lookups(body({"ids": [bad, 100]})), allocator(100, 1))
    results = json.loads(raw)["results"]
    assert results[0] == {"error": f"item 0: malformed id: expected an integer within 0..{MAX_ID}"}
    assert results[1] == {"id": 100, "sold": True}
    assert tally.malformed == 1


def test_expired_ids_are_unknown() -> None:
    ids = allocator(100, 10, retention=3)  # knows 107..109
    raw, tally = lookup_results([106, 107], ids)
    assert json.loads(raw)["results"] == [{"id": 106, "error": f"item 0: {UNKNOWN_PAST}"},
                                          {"id": 107, "sold": False}]
    assert (tally.unknown, tally.not_sold) == (1, 1)


@given(st.lists(st.integers(0, 140), min_size=1, max_size=40), st.integers(1, 50), st.integers(1, 20))
def test_lookups_agree_with_the_allocator(probes: list[int], issued: int, retention: int) -> None:
    ids = allocator(100, issued, retention)
    raw, tally = lookup_results(list(probes), ids)
    results = json.loads(raw)["results"]
    for probe, result in zip(probes, results, strict=True):
        assert result["id"] == probe
        if ids.is_known(probe):
            assert result == {"id": probe, "sold": probe % 2 == 0}
        else:
            assert "unknown id" in result["error"]
    assert tally.sold + tally.not_sold + tally.unknown == len(probes)
