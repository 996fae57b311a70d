"""The Ledger's messages: round trips, the batch bound (a full batch of the largest decisions still fits
in one frame), and bad frames rejected as ProtocolError."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport import limits, protocol
from transport.protocol import (
    PROTOCOL_VERSION,
    Decision,
    LastDecidedReply,
    LastDecidedRequest,
    LedgerAck,
    LedgerBatch,
    MessageType,
    ProtocolError,
)

uint = st.integers(min_value=0, max_value=2**63 - 1)
prices = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)
names = st.text(min_size=1, max_size=limits.STRATEGY_NAME_MAX_LEN)
books = st.text(min_size=1, max_size=limits.BOOK_ID_MAX_LEN)
decisions = st.builds(Decision, ts=st.floats(allow_nan=False, allow_infinity=False), tick=uint, book=books,
                      strategy=names, prices=st.lists(prices, max_size=8).map(tuple), avg_comp_price=prices,
                      request_id=uint, sold=st.booleans(), price=prices, rule_price=st.none() | prices,
                      guardrail=st.lists(st.sampled_from(["step", "floor"]), max_size=2).map(tuple))
MESSAGES = [
    st.builds(LedgerBatch, batch_id=uint, decisions=st.lists(decisions, min_size=1, max_size=5).map(tuple)),
    st.builds(LedgerAck, batch_id=uint, stored=uint, duplicates=uint, rejected=uint, error=st.text(max_size=500)),
    st.builds(LastDecidedRequest, request_id=uint,
              pairs=st.lists(st.tuples(books, names), max_size=20).map(tuple)),
    st.lists(st.tuples(st.none() | prices, st.floats(allow_nan=False, allow_infinity=False)), max_size=20).flatmap(
        lambda items: st.builds(LastDecidedReply, request_id=uint, prices=st.just(tuple(p for p, _ in items)),
                                ts=st.just(tuple(t for _, t in items)), error=st.text(max_size=500))),
    st.lists(st.tuples(st.none() | prices, st.floats(min_value=0, max_value=2e9), st.integers(-1, 2**40)),
             max_size=20).flatmap(
        lambda items: st.builds(LastDecidedReply, request_id=uint, prices=st.just(tuple(p for p, _, _ in items)),
                                ts=st.just(tuple(t for _, t, _ in items)), runs=st.just(tuple(t for _, t, _ in items)),
                                ticks=st.just(tuple(k for _, _, k in items)))),
]


@pytest.mark.parametrize("strategy", MESSAGES, ids=["batch", "ack", "query", "reply", "reply-with-ticks"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip(strategy: st.SearchStrategy[Any], data: st.DataObject) -> None:
    message = data.draw(strategy)
    assert protocol.decode(protocol.encode(message)) == message


def test_the_ledger_uses_message_types_10_to_19_only() -> None:
    ours = [MessageType.LEDGER_BATCH, MessageType.LEDGER_ACK, MessageType.LAST_DECIDED_REQUEST,
            MessageType.LAST_DECIDED_REPLY]
    assert all(10 <= kind <= 19 for kind in ours)


def largest_decision() -> Decision:
    """The biggest decision the codec accepts: longest ids in 4-byte characters, a full window of the
    longest decimal strings, every guardrail name at its longest."""
    longest = Decimal("1." + "1" * (protocol.MAX_DECIMAL_TEXT - 2))  # the codec's limit for a price
    mean = Decimal("1." + "1" * (limits.MEAN_TEXT_MAX - 2))  # and for a mean
    return Decision(1.5e9, 2**63 - 1, "\U0001f4d6" * limits.BOOK_ID_MAX_LEN,
                    "\U0001f4d6" * limits.STRATEGY_NAME_MAX_LEN, (longest,) * limits.WINDOW_MAX, mean,
                    2**63 - 1, True, longest, longest,
                    ("\U0001f4d6" * limits.GUARDRAIL_NAME_MAX_LEN,) * protocol.MAX_GUARDRAILS)


def test_a_full_batch_of_the_largest_decisions_fits_in_one_frame() -> None:
    batch = LedgerBatch(2**63 - 1, (largest_decision(),) * limits.LEDGER_BATCH_MAX)
    frame = protocol.encode(batch)
    assert len(frame) <= limits.FRAME_MAX_BYTES
    assert protocol.decode(frame) == batch


def test_a_full_query_of_the_longest_pairs_fits_in_one_frame() -> None:
    pair = ("\U0001f4d6" * limits.BOOK_ID_MAX_LEN, "\U0001f4d6" * limits.STRATEGY_NAME_MAX_LEN)
    frame = protocol.encode(LastDecidedRequest(1, (pair,) * limits.LEDGER_QUERY_MAX))
    assert len(frame) <= limits.FRAME_MAX_BYTES


def frame(*items: Any) -> bytes:
    packed: bytes = msgpack.packb([PROTOCOL_VERSION, *items], use_bin_type=True)
    return packed


FIELDS = [1.0, 1, "b", "s", ["1.00"], "1.00", 9, True, "1.10", "", []]
MORE = [0.0, "", "", "", ""]  # run, factor, previous_price, floor, ceiling


@pytest.mark.parametrize(("data", "reason"), [
    pytest.param(frame(MessageType.LEDGER_BATCH, 1, []), "decisions", id="empty-batch"),
    pytest.param(frame(MessageType.LEDGER_BATCH, 1, [FIELDS] * (limits.LEDGER_BATCH_MAX + 1)), "decisions",
                 id="batch-too-long"),
    pytest.param(frame(MessageType.LEDGER_BATCH, 1, "x"), "decisions", id="batch-not-a-list"),
    pytest.param(frame(MessageType.LEDGER_BATCH, 1, [FIELDS[:-1]]), "decision", id="decision-short"),
    pytest.param(frame(MessageType.LEDGER_BATCH, 1, [[*FIELDS[:8], 1.1, "", [], *MORE]]), "price", id="float-price"),
    pytest.param(frame(MessageType.LEDGER_BATCH, -1, [FIELDS]), "batch_id", id="negative-id"),
    pytest.param(frame(MessageType.LEDGER_ACK, 1, 1, 0, 0), "expected 5 fields", id="ack-short"),
    pytest.param(frame(MessageType.LAST_DECIDED_REQUEST, 1, [["b"]]), "pair", id="pair-short"),
    pytest.param(frame(MessageType.LAST_DECIDED_REQUEST, 1, [["b", ""]]), "strategy", id="empty-strategy"),
    pytest.param(frame(MessageType.LAST_DECIDED_REQUEST, 1, [["b", "s"]] * (limits.LEDGER_QUERY_MAX + 1)), "pairs",
                 id="too-many-pairs"),
    pytest.param(frame(MessageType.LAST_DECIDED_REPLY, 1, ["1.00"], [], "", [], []), "same length",
                 id="reply-mismatch"),
    pytest.param(frame(MessageType.LAST_DECIDED_REPLY, 1, ["NaN"], [1.0], "", [], []), "price", id="reply-nan"),
    pytest.param(frame(MessageType.LAST_DECIDED_REPLY, 1, ["1.00"], [1.0], "", [0.0], []), "runs, ticks",
                 id="reply-runs-without-ticks"),
])
def test_bad_ledger_frames_are_protocol_errors(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode(data)
