"""The Ledger's fast reader of batches (transport/ledger_rows.py) against the protocol's decoder and
``records.to_row``: whatever frame it reads, they read the same rows from it, and they refuse nothing it
accepts; the usual batch does take the fast path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.ledger.records import to_row
from bench.ledger import frames
from tests.actors.ledger.helpers import T0, decision
from transport import limits, protocol
from transport.ledger_rows import DecisionRow, in_read_order, read_batch
from transport.protocol import PROTOCOL_VERSION, LedgerBatch, MessageType, ProtocolError


def slow(frame: bytes) -> tuple[int, list[DecisionRow]] | str:
    """What the protocol and to_row make of a frame: the rows, or why not."""
    try:
        batch = protocol.decode_as(frame, LedgerBatch)
    except ProtocolError as exc:
        return f"bad frame: {exc}"
    rows = [to_row(d) for d in batch.decisions]
    refused = [row for row in rows if isinstance(row, str)]
    return f"refused: {refused[0]}" if refused else (batch.batch_id, rows)  # type: ignore[return-value]


def agree(frame: bytes) -> tuple[int, list[DecisionRow]] | None:
    fast = read_batch(frame)
    if fast is not None:
        assert slow(frame) == fast
    return fast


def packed(*items: Any) -> bytes:
    out: bytes = msgpack.packb([PROTOCOL_VERSION, *items], use_bin_type=True)
    return out


def test_the_usual_batch_is_read_fast_into_the_same_rows() -> None:
    for frame in frames(1000):
        assert agree(frame) is not None
    usual = [decision(1), decision(2, "B002", price="16.1", rule_price="15", guardrail=("floor", "step"), run=T0),
             decision(3, "0-12-345678-9", "fast", sold=True, ts=T0 + 0.25)]
    read = agree(protocol.encode(LedgerBatch(7, tuple(usual))))
    assert read is not None and read[0] == 7 and [row.price for row in read[1]] == ["16.18", "16.10", "16.18"]
    assert read[1][1].rule_price == "15.00" and read[1][1].guardrail == '["floor","step"]'


# A decision's fields on the wire (transport.protocol's encoding): valid ones, and odd values for each.
GOOD = [T0, 5, "B001", "default", ["18.02", "17.98", "17.99"], "17.996666", 1005, False, "16.20", "", [], T0 - 5.0,
        "0.9", "", "", ""]
ODD_MONEY: list[Any] = [
             "0.01", "0.009999", "0", "5000000", "5000000.000000", "5000000.000001", "4999999.999999", "10000000",
             "10000000.00", "10000000.01", "1E+1", "1e1", " 1.00", "1.00 ", "+1.00", "-1.00", "01.00", "1_000",
             "\u0661\u0662", "NaN", "Infinity", "sNaN", ".5", "5.", "1.2345678", "0.0000001", "0." + "0" * 37 + "1",
             "1." + "1" * 38, "1." + "1" * 39, "", "1.123", "16.1", 1.5, 16, None, True,
             '1.00","2.00', "1.00\n2.00", "1.00\n", '"', "[]"]  # separators of the columns' joined texts
ODD: dict[int, list[Any]] = {
    0: [0.0, -1.0, float("nan"), float("inf"), 5, True, "1"],  # ts
    1: [-1, 2**63 - 1, 2**63, 1.0, True, None],  # tick
    2: ["", " B1", "B\n1", "x" * 128, "x" * 129, "\U0001f4d6", 5, None],  # book
    3: ["", " s", "s\t", "x" * 64, "x" * 65, 5],  # strategy
    4: [[], ["1.00"] * limits.WINDOW_MAX, ["1.00"] * (limits.WINDOW_MAX + 1), "1.00", [1.0], ["1.00", 2],
        *[[money] for money in ODD_MONEY]],  # prices
    5: [*ODD_MONEY, "0.0" + "3" * 60, "0.0" + "3" * 61, "0.00" + "3" * 59, "5." + "3" * 59, "5." + "3" * 61,
        "0.0" + "3" * 59 + "4", "4999999.9" + "9" * 52, "5000000." + "0" * 55,
        "5000000." + "0" * 54 + "1", "0." + "0" * 39 + "1", "0." + "0" * 40 + "1", "0." + "0" * 45 + "9",
        "0." + "0" * 60],  # avg_comp_price: ODD_MONEY, and means near their length and value bounds
    6: [-1, 2**63 - 1, 2**63, 1.5, None],  # request_id
    7: [0, 1, None, "yes"],  # sold
    8: ODD_MONEY,  # price
    9: ODD_MONEY,  # rule_price
    10: [["floor"], [""], ["a\x00"], ["x" * 32], ["x" * 33], [5], ["a"] * protocol.MAX_GUARDRAILS,
         ["a"] * (protocol.MAX_GUARDRAILS + 1), ['a"b', "c\\d"], "floor"],  # guardrail
    11: [0.0, 0, -1.0, float("nan"), float("inf"), "0"],  # run
    12: ["", "1.1", "0.5", "2", "0.49", "2.01", "0.4999999999999999999999", "2.0000000000000000000001",
         "1." + "1" * 36, "1." + "1" * 37, "1E+0", "1.10", ".9", " 0.9", 0.9, None],  # factor
    13: ODD_MONEY,  # previous_price
    14: ODD_MONEY,  # floor
    15: ODD_MONEY,  # ceiling
}
CHANGES = st.lists(st.integers(0, len(GOOD) - 1).flatmap(lambda i: st.tuples(st.just(i), st.sampled_from(ODD[i]))),
                   max_size=3)


@settings(max_examples=400, deadline=None)
@given(CHANGES, st.integers(0, 2))
@example([], 0)
def test_any_odd_field_is_read_as_the_protocol_reads_it_or_left_to_it(changes: list[tuple[int, Any]],
                                                                     position: int) -> None:
    fields = list(GOOD)
    for index, value in changes:
        fields[index] = value
    items = [list(GOOD), list(GOOD), list(GOOD)]
    items[position] = fields
    read = agree(packed(MessageType.LEDGER_BATCH, 3, items))
    assert read is not None or changes  # the unchanged batch is read fast


money_text = st.one_of(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(6_000_000), places=6).map(str),
                       st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**7), places=2).map(str),
                       st.decimals(allow_nan=True).map(str), st.sampled_from(ODD_MONEY))


@settings(max_examples=400, deadline=None)
@given(prices=st.lists(money_text, min_size=1, max_size=6), avg=money_text, price=money_text,
       rule=st.just("") | money_text)
def test_money_is_read_as_the_protocol_reads_it(prices: list[Any], avg: Any, price: Any, rule: Any) -> None:
    fields = [*GOOD[:4], prices, avg, *GOOD[6:8], price, rule, *GOOD[10:]]
    agree(packed(MessageType.LEDGER_BATCH, 1, [fields]))


@given(st.binary(max_size=200))
def test_garbage_is_left_to_the_protocol(data: bytes) -> None:
    assert agree(data) is None or slow(data)


def test_frames_of_another_shape_are_left_to_the_protocol() -> None:
    for frame in [packed(MessageType.LEDGER_BATCH, 1, []), packed(MessageType.LEDGER_BATCH, -1, [GOOD]),
                  packed(MessageType.LEDGER_BATCH, 1, [GOOD] * (limits.LEDGER_BATCH_MAX + 1)),
                  packed(MessageType.LEDGER_BATCH, 1, [GOOD[:-1]]), packed(MessageType.LEDGER_BATCH, 1, GOOD),
                  packed(MessageType.LEDGER_ACK, 1, 1, 0, 0, ""), packed(MessageType.LEDGER_BATCH, 1, [GOOD], 0),
                  msgpack.packb([PROTOCOL_VERSION + 1, MessageType.LEDGER_BATCH, 1, [GOOD]]),
                  msgpack.packb([True, MessageType.LEDGER_BATCH, 1, [GOOD]]), b"\x00" * 10,
                  packed(MessageType.LEDGER_BATCH, 1, [GOOD]) + b"\x00" * limits.FRAME_MAX_BYTES]:
        assert read_batch(frame) is None and isinstance(slow(frame), str)
    assert read_batch(packed(MessageType.LEDGER_BATCH, 1, [GOOD])) is not None


def test_the_fields_are_found_by_their_declared_names() -> None:
    declared = protocol.field_names(protocol.Decision)
    pick = in_read_order(declared[::-1], declared)  # a declaration in another order is still read by name
    assert pick(list(reversed(GOOD))) == tuple(GOOD)
    with pytest.raises(TypeError, match="declares"):
        in_read_order((*declared, "margin"))  # a field the reader does not know: refused at import
    with pytest.raises(TypeError, match="declares"):
        in_read_order(declared[1:])


@pytest.mark.parametrize("at", [0, 2, 4])
def test_a_window_price_at_its_range_edges_is_judged_wherever_it_lies(at: int) -> None:
    """Only a price beginning with 0 or with all of the maximum's integer digits has its range
    compared: those at the edges, anywhere in the window, are read or refused as the protocol does."""
    for edge, inside in [("0.01", True), ("0.010000", True), ("0.009999", False), ("0", False), ("0.0", False),
                         ("5000000", True), ("4999999.999999", True), ("5000000.000000", True),
                         ("5000000.000001", False), ("9999999", False), ("1000000", True)]:
        window = ["18.02", "17.98", "17.99", "17.94", "17.95"]
        window[at] = edge
        frame = packed(MessageType.LEDGER_BATCH, 1, [[*GOOD[:4], window, *GOOD[5:]]])
        read = agree(frame)
        assert (read is not None) == inside, edge
        assert inside or isinstance(slow(frame), str)
