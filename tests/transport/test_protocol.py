"""The codec: every message survives a round trip, and anything else is a ProtocolError."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, get_args

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport import limits, protocol
from transport.protocol import (
    MAX_BOOK_ID_LEN,
    MAX_COUNTERS,
    MAX_FRAME_BYTES,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    ActorStatus,
    Decision,
    Heartbeat,
    LastDecidedReply,
    LastDecidedRequest,
    LastPricesReply,
    LastPricesRequest,
    LedgerAck,
    LedgerBatch,
    LedgerQuery,
    LedgerQueryReply,
    Message,
    MessageType,
    ProtocolError,
    QueryStatus,
    SupervisorEvent,
    Tick,
    WindowsReply,
    WindowsRequest,
)

# --- strategies ----------------------------------------------------------------------------------

uint = st.integers(min_value=0, max_value=2**63 - 1)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # counters may be gauges
finite = st.floats(allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)
price_windows = st.lists(prices, max_size=MAX_WINDOW).map(tuple)
book_ids = st.text(min_size=1, max_size=MAX_BOOK_ID_LEN)
short_names = st.text(min_size=1, max_size=64)

intervals = st.floats(min_value=limits.TICK_MIN, max_value=limits.TICK_MAX)
ticks = st.builds(Tick, seq=uint, scheduled_at=finite, sent_at=finite, interval=intervals, t0=finite)
requests = st.builds(LastPricesRequest, request_id=uint, book=book_ids, tick=uint,
                     count=st.integers(min_value=1, max_value=MAX_WINDOW))
replies = st.builds(LastPricesReply, request_id=uint, book=book_ids, tick=uint, prices=price_windows,
                    error=st.text(max_size=500))
decisions = st.builds(Decision, ts=finite, tick=uint, book=book_ids, strategy=short_names,
                      prices=price_windows, avg_comp_price=prices, request_id=uint, sold=st.booleans(),
                      price=prices, rule_price=st.none() | prices,
                      guardrail=st.lists(st.sampled_from(["step", "ending", "floor", "ceiling"]),
                                         max_size=4).map(tuple), run=finite)
heartbeats = st.builds(Heartbeat, actor=short_names, pid=uint, seq=uint, sent_at=finite,
                       counters=st.dictionaries(short_names, int64, max_size=MAX_COUNTERS))
windows_requests = st.builds(WindowsRequest, request_id=uint, tick=uint, count=st.integers(1, 5),
                             books=st.lists(book_ids, min_size=1, max_size=50).map(tuple))
windows_replies = st.lists(st.tuples(price_windows, st.text(max_size=500)), max_size=30).flatmap(
    lambda items: st.builds(WindowsReply, request_id=uint, tick=uint, windows=st.just(tuple(w for w, _ in items)),
                            errors=st.just(tuple(e for _, e in items))))
statuses = st.builds(ActorStatus, ts=finite, actor=short_names, pid=uint, rss_kib=uint, pss_kib=uint,
                     restarts=uint, hangs=uint, up_since=finite, last_beat=finite,
                     counters=st.dictionaries(short_names, int64, max_size=MAX_COUNTERS))
ALL = [ticks, requests, replies, decisions, heartbeats, windows_requests, windows_replies, statuses]
messages: st.SearchStrategy[Message] = st.one_of(*ALL)


def frame(*items: Any) -> bytes:
    packed: bytes = msgpack.packb(list(items), use_bin_type=True)
    return packed


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL, ids=["tick", "request", "reply", "decision", "heartbeat",
                                              "windows-request", "windows-reply", "status"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(strategy: st.SearchStrategy[Message], data: st.DataObject) -> None:
    message = data.draw(strategy)
    encoded = protocol.encode(message)
    assert len(encoded) <= MAX_FRAME_BYTES
    decoded = protocol.decode(encoded)
    assert type(decoded) is type(message)
    assert decoded == message


def test_round_trip_keeps_money_exact() -> None:
    reply = LastPricesReply(7, "978-0", 3, (Decimal("0.10"), Decimal("19.99"), Decimal("1000.00")))
    decoded = protocol.decode(protocol.encode(reply))
    assert isinstance(decoded, LastPricesReply)
    # Exact decimals, including the trailing zero: money never goes through a float.
    assert [str(p) for p in decoded.prices] == ["0.10", "19.99", "1000.00"]


def test_counters_may_be_negative_gauges() -> None:
    beat = Heartbeat("algorithm", 42, 3, 1.5, {"last_tick": -1, "min": -(2**63), "max": 2**63 - 1})
    assert protocol.decode(protocol.encode(beat)) == beat


def test_encode_shape_is_versioned_positional_array() -> None:
    raw = msgpack.unpackb(protocol.encode(Tick(5, 10.0, 10.5, 2.0, 0.0)))
    assert raw == [PROTOCOL_VERSION, MessageType.TICK, 5, 10.0, 10.5, 2.0, 0.0]
    raw = msgpack.unpackb(protocol.encode(Decision(1.0, 2, "b", "s", (Decimal("1.50"),), Decimal("1.50"),
                                                   9, True, Decimal("1.49"))))
    assert raw == [PROTOCOL_VERSION, MessageType.DECISION, 1.0, 2, "b", "s", ["1.50"], "1.50", 9, True, "1.49",
                   "", [], 0.0, "", "", "", ""]


# --- garbage -------------------------------------------------------------------------------------

_TICK = frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.5, 1.0, 0.5, 1.0)


def _request(request_id: Any = 1, book: Any = "b", tick: Any = 0, count: Any = 3) -> bytes:
    return frame(PROTOCOL_VERSION, MessageType.LAST_PRICES_REQUEST, request_id, book, tick, count)


def _reply(prices: Any = ("1.00",), error: Any = "", book: Any = "b") -> bytes:
    return frame(PROTOCOL_VERSION, MessageType.LAST_PRICES_REPLY, 1, book, 0, list(prices), error)


def _decision(sold: Any = False, price: Any = "1.00", avg: Any = "1.00", strategy: Any = "s",
              rule_price: Any = "", guardrail: Any = (), run: Any = 0.0) -> bytes:
    return frame(PROTOCOL_VERSION, MessageType.DECISION, 1.0, 1, "b", strategy, ["1.00"], avg, 1, sold, price,
                 rule_price, list(guardrail), run, "", "", "", "")


def _windows_request(count: Any = 5, books: Any = ("a", "b")) -> bytes:
    return frame(PROTOCOL_VERSION, MessageType.WINDOWS_REQUEST, 1, 0, count, list(books))


def _windows_reply(windows: Any = (("1.00",), ()), errors: Any = ("", "unknown book b")) -> bytes:
    return frame(PROTOCOL_VERSION, MessageType.WINDOWS_REPLY, 1, 0, [list(w) for w in windows], list(errors))


def _heartbeat(counters: Any = None, actor: Any = "a") -> bytes:
    return frame(PROTOCOL_VERSION, MessageType.HEARTBEAT, actor, 1, 1, 1.0, {} if counters is None else counters)


def test_reference_frames_are_valid() -> None:
    """The builders below produce valid frames, so each garbage case differs by one field only."""
    for valid in (_TICK, _request(), _reply(), _decision(), _heartbeat(), _windows_request(), _windows_reply()):
        assert isinstance(msgpack.unpackb(valid), list)
        protocol.decode(valid)


@pytest.mark.parametrize("data", [
    b"",
    b"\xc1",  # the one byte msgpack never uses
    b"\x00\xff\x00garbage",  # a valid int followed by extra data
    _TICK[:-1],  # truncated
    _TICK[:3],
    b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 billion items
])
def test_not_msgpack(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="not msgpack"):
        protocol.decode(data)


def test_oversized_frame_is_rejected_before_unpacking() -> None:
    big = frame(PROTOCOL_VERSION, MessageType.LAST_PRICES_REPLY, 1, "b", 0, [], "x" * MAX_FRAME_BYTES)
    assert len(big) > MAX_FRAME_BYTES
    with pytest.raises(ProtocolError, match="exceeds"):
        protocol.decode(big)
    with pytest.raises(ProtocolError, match="exceeds"):
        protocol.decode(b"\x00" * (MAX_FRAME_BYTES + 1))


GARBAGE = [
    # (frame, a fragment of the error message)
    pytest.param(msgpack.packb({"a": 1}), "array", id="map"),
    pytest.param(msgpack.packb(1), "array", id="int"),
    pytest.param(msgpack.packb("tick"), "array", id="str"),
    pytest.param(frame(PROTOCOL_VERSION), "array", id="no-type"),
    pytest.param(frame(2, MessageType.TICK, 1, 1.0, 1.0, 0.5, 1.0), "version", id="version-2"),
    pytest.param(frame(0, MessageType.TICK, 1, 1.0, 1.0, 0.5, 1.0), "version", id="version-0"),
    pytest.param(frame("1", MessageType.TICK, 1, 1.0, 1.0, 0.5, 1.0), "version", id="version-str"),
    pytest.param(frame(PROTOCOL_VERSION, 99, 1, 1.0, 1.0, 0.5), "unknown message type", id="type-99"),
    pytest.param(frame(PROTOCOL_VERSION, 0), "unknown message type", id="type-0"),
    pytest.param(frame(PROTOCOL_VERSION, "TICK", 1, 1.0, 1.0, 0.5, 1.0), "unknown message type", id="type-str"),
    pytest.param(frame(PROTOCOL_VERSION, None), "unknown message type", id="type-nil"),
    pytest.param(frame(PROTOCOL_VERSION, [1]), "unknown message type", id="type-list"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.0, 1.0, 0.5), "expected 5 fields", id="arity-short"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.0, 1.0, 0.5, 1.0, 0), "expected 5 fields",
                 id="arity-long"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.HEARTBEAT), "expected 5 fields", id="arity-empty"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, True, 1.0, 1.0, 0.5, 1.0), "seq", id="bool-seq"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1.0, 1.0, 1.0, 0.5, 1.0), "seq", id="float-seq"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, -1, 1.0, 1.0, 0.5, 1.0), "seq", id="negative-seq"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 2**63, 1.0, 1.0, 0.5, 1.0), "seq", id="seq-above-int64"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, float("nan"), 1.0, 0.5, 1.0), "scheduled_at",
                 id="nan"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.0, float("inf"), 0.5, 1.0), "sent_at", id="inf"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.0, 1.0, 0.0, 1.0), "interval", id="zero-interval"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.0, 1.0, -2.0, 1.0), "interval", id="neg-interval"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.0, 1.0, 0.5, float("nan")), "t0", id="nan-t0"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, 1.0, 1.0, float("-inf"), 1.0), "interval",
                 id="-inf"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, True, 1.0, 0.5, 1.0), "scheduled_at",
                 id="bool-float"),
    pytest.param(frame(PROTOCOL_VERSION, MessageType.TICK, 1, "1.0", 1.0, 0.5, 1.0), "scheduled_at",
                 id="str-float"),
    pytest.param(_request(request_id=True), "request_id", id="bool-request-id"),
    pytest.param(_request(tick=False), "tick", id="bool-tick"),
    pytest.param(_request(count=True), "count", id="bool-count"),
    pytest.param(_request(count=0), "count", id="count-0"),
    pytest.param(_request(count=MAX_WINDOW + 1), "count", id="count-too-big"),
    pytest.param(_request(book=""), "book", id="empty-book"),
    pytest.param(_request(book="x" * (MAX_BOOK_ID_LEN + 1)), "book", id="long-book"),
    pytest.param(_request(book=b"bytes"), "book", id="bin-book"),
    pytest.param(_request(book=7), "book", id="int-book"),
    pytest.param(_reply(prices=["abc"]), "prices", id="price-abc"),
    pytest.param(_reply(prices=[""]), "prices", id="price-empty"),
    pytest.param(_reply(prices=["1,00"]), "prices", id="price-comma"),
    pytest.param(_reply(prices=["NaN"]), "prices", id="price-NaN"),
    pytest.param(_reply(prices=["sNaN"]), "prices", id="price-sNaN"),
    pytest.param(_reply(prices=["Infinity"]), "prices", id="price-inf"),
    pytest.param(_reply(prices=["-inf"]), "prices", id="price-minus-inf"),
    pytest.param(_reply(prices=[1.5]), "prices", id="price-float"),
    pytest.param(_reply(prices=[150]), "prices", id="price-int"),
    pytest.param(_reply(prices=["1" * 41]), "prices", id="price-too-long"),
    pytest.param(_reply(prices=["1.00"] * (MAX_WINDOW + 1)), "prices", id="window-too-big"),
    # A bad price after good ones (windows are checked in bulk first, then one by one for the error).
    *[pytest.param(_reply(prices=["1.00", "2.50", bad]), "prices", id=f"window-then-{name}")
      for name, bad in (("NaN", "NaN"), ("snan", "snan"), ("INF", "-INF"), ("Infinity", "Infinity"), ("bin", b"1.00"),
                        ("float", 1.5), ("long", "1" * 41), ("abc", "abc"), ("nil", None))],
    pytest.param(frame(PROTOCOL_VERSION, MessageType.LAST_PRICES_REPLY, 1, "b", 0, "1.00", ""), "prices",
                 id="prices-not-list"),
    pytest.param(_reply(error="e" * 501), "error", id="error-too-long"),
    pytest.param(_reply(error=None), "error", id="error-nil"),
    pytest.param(_decision(sold=1), "sold", id="int-sold"),
    pytest.param(_decision(price="NaN"), "price", id="decision-NaN"),
    pytest.param(_decision(price=9.99), "price", id="decision-float-price"),
    pytest.param(_decision(avg="ten"), "avg_comp_price", id="decision-avg"),
    pytest.param(_decision(strategy="s" * 65), "strategy", id="long-strategy"),
    pytest.param(_decision(rule_price="x"), "rule_price", id="decision-rule-price"),
    pytest.param(_decision(run="t0"), "run", id="decision-run"),
    pytest.param(_decision(guardrail=["floor"] * 9), "guardrail", id="too-many-guardrails"),
    pytest.param(_windows_request(books=()), "books", id="no-books"),
    pytest.param(_windows_request(books=["b"] * 1001), "books", id="too-many-books"),
    pytest.param(_windows_request(count=64, books=[f"b{i}" for i in range(600)]), "prices", id="too-many-prices"),
    pytest.param(_windows_request(books=["a", ""]), "books", id="empty-book-in-batch"),
    pytest.param(_windows_reply(errors=("",)), "errors", id="errors-mismatch"),
    pytest.param(_windows_reply(windows=(("x",),), errors=("",)), "windows", id="bad-window-price"),
    pytest.param(_heartbeat(counters={f"c{i}": i for i in range(MAX_COUNTERS + 1)}), "counters",
                 id="counters-too-big"),
    pytest.param(_heartbeat(counters=[1, 2]), "counters", id="counters-list"),
    pytest.param(_heartbeat(counters={"c": 2**64 - 1}), "counter value", id="counter-above-int64"),
    pytest.param(_heartbeat(counters={"c": True}), "counter value", id="counter-bool"),
    pytest.param(_heartbeat(counters={"c": 1.5}), "counter value", id="counter-float"),
    pytest.param(_heartbeat(counters={"": 1}), "counter name", id="counter-empty-name"),
    pytest.param(_heartbeat(counters={"c" * 65: 1}), "counter name", id="counter-long-name"),
    pytest.param(_heartbeat(counters={b"c": 1}), "counter name", id="counter-bin-name"),
    pytest.param(_heartbeat(actor="a" * 65), "actor", id="long-actor"),
]


@pytest.mark.parametrize(("data", "reason"), GARBAGE)
def test_garbage_is_a_protocol_error_for_the_right_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode(data)


@pytest.mark.parametrize("data", [
    frame(True, MessageType.TICK, 1, 1.0, 1.0, 0.5),
    frame(1.0, MessageType.TICK, 1, 1.0, 1.0, 0.5),
    frame(PROTOCOL_VERSION, True, 1, 1.0, 1.0, 0.5),
    frame(PROTOCOL_VERSION, 1.0, 1, 1.0, 1.0, 0.5),
], ids=["bool-version", "float-version", "bool-type", "float-type"])
def test_header_fields_must_be_ints(data: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"version|type"):
        protocol.decode(data)


# --- fuzzing -------------------------------------------------------------------------------------


def _check_decode(data: bytes) -> None:
    try:
        message = protocol.decode(data)
    except ProtocolError:
        return
    assert isinstance(message, get_args(Message))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_decode_of_arbitrary_bytes_only_raises_protocol_error(data: bytes) -> None:
    _check_decode(data)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None)
@given(version=st.sampled_from([PROTOCOL_VERSION, 0, 2]) | msgpack_values,
       kind=st.sampled_from(list(MessageType)) | msgpack_values,
       fields=st.lists(msgpack_values, max_size=10))
def test_decode_of_well_formed_msgpack_only_raises_protocol_error(version: Any, kind: Any,
                                                                 fields: list[Any]) -> None:
    _check_decode(frame(version, kind, *fields))


@settings(max_examples=200, deadline=None)
@given(message=messages, cut=st.integers(min_value=0), flip=st.integers(min_value=0, max_value=255))
def test_decode_of_corrupted_frames_only_raises_protocol_error(message: Message, cut: int, flip: int) -> None:
    encoded = bytearray(protocol.encode(message))
    position = cut % len(encoded)
    encoded[position] ^= flip
    _check_decode(bytes(encoded))
    _check_decode(bytes(encoded[:position]))


def test_decode_as_accepts_the_expected_kind_only() -> None:
    tick = Tick(3, 1.0, 1.5, 5.0)
    assert protocol.decode_as(protocol.encode(tick), Tick) == tick
    with pytest.raises(ProtocolError, match="unexpected Tick \\(expected Heartbeat\\)"):
        protocol.decode_as(protocol.encode(tick), Heartbeat)
    with pytest.raises(ProtocolError, match="not msgpack"):
        protocol.decode_as(b"\xc1", Tick)


def test_supervisor_events_round_trip_and_reject_unknown_kinds() -> None:
    event = SupervisorEvent(1.5, "exited", "scheduler", 42, "killed by SIGKILL; restart in 0.5s", -9, 0.5)
    assert protocol.decode(protocol.encode(event)) == event
    bad = msgpack.packb([protocol.PROTOCOL_VERSION, protocol.MessageType.SUPERVISOR_EVENT, 1.0, "exploded", "x", 1, "",
                         0, 0.0])
    with pytest.raises(ProtocolError, match="unknown supervisor event"):
        protocol.decode(bad)
    negative = msgpack.packb([protocol.PROTOCOL_VERSION, protocol.MessageType.SUPERVISOR_EVENT, 1.0, "exited", "x", 1,
                              "", 0, -1.0])
    with pytest.raises(ProtocolError, match="restart_in"):
        protocol.decode(negative)


# --- golden frames: the wire format, byte for byte -------------------------------------------------

D = Decimal
FULL_DECISION = Decision(1_795_000_000.25, 1000, "978-0", "default", (D("18.02"), D("17.98")), D("18.00"),
                         1_795_000_000_000_041, True, D("19.78"), D("19.80"), ("step", "ending"), 1_790_000_000.0,
                         D("1.1"), D("18.99"), D("12.50"), None)
FULL_DECISION_WIRE = [1_795_000_000.25, 1000, "978-0", "default", ["18.02", "17.98"], "18.00", 1_795_000_000_000_041,
                      True, "19.78", "19.80", ["step", "ending"], 1_790_000_000.0, "1.1", "18.99", "12.50", ""]
PLAIN_DECISION = Decision(1.5, 2, "b", "s", (), D("0.10"), 9, False, D("0.09"))
PLAIN_DECISION_WIRE = [1.5, 2, "b", "s", [], "0.10", 9, False, "0.09", "", [], 0.0, "", "", "", ""]

# Every message type: a message and its fields as they went on the wire before the codec was derived from
# declarations (issue 18). A new message adds its own here (test_every_message_type_has_a_golden_frame).
GOLDEN: dict[MessageType, tuple[Message, list[Any]]] = {
    MessageType.TICK: (Tick(5, 10.0, 10.25, 2.0, 1_790_000_000.0), [5, 10.0, 10.25, 2.0, 1_790_000_000.0]),
    MessageType.LAST_PRICES_REQUEST: (LastPricesRequest(41, "978-0", 3, 5), [41, "978-0", 3, 5]),
    MessageType.LAST_PRICES_REPLY: (LastPricesReply(41, "978-0", 3, (D("0.10"), D("19.99"), D("1000.00")), "late"),
                                    [41, "978-0", 3, ["0.10", "19.99", "1000.00"], "late"]),
    MessageType.DECISION: (FULL_DECISION, FULL_DECISION_WIRE),
    MessageType.HEARTBEAT: (Heartbeat("algorithm", 42, 7, 1.5, {"last_tick": -1, "decisions": 10}),
                            ["algorithm", 42, 7, 1.5, {"last_tick": -1, "decisions": 10}]),
    MessageType.SUPERVISOR_EVENT: (SupervisorEvent(1.5, "exited", "scheduler", 42, "killed by SIGKILL", -9, 0.5),
                                   [1.5, "exited", "scheduler", 42, "killed by SIGKILL", -9, 0.5]),
    MessageType.ACTOR_STATUS: (ActorStatus(1.5, "ledger", 43, 30_000, 20_000, 1, 0, 1.0, 1.25, {"stored": 5}),
                               [1.5, "ledger", 43, 30_000, 20_000, 1, 0, 1.0, 1.25, {"stored": 5}]),
    MessageType.WINDOWS_REQUEST: (WindowsRequest(43, 3, 5, ("A", "B")), [43, 3, 5, ["A", "B"]]),
    MessageType.WINDOWS_REPLY: (WindowsReply(43, 3, ((D("1.00"), D("2.50")), ()), ("", "unknown book B")),
                                [43, 3, [["1.00", "2.50"], []], ["", "unknown book B"]]),
    MessageType.LEDGER_BATCH: (LedgerBatch(9, (FULL_DECISION, PLAIN_DECISION)),
                               [9, [FULL_DECISION_WIRE, PLAIN_DECISION_WIRE]]),
    MessageType.LEDGER_ACK: (LedgerAck(9, 1, 1, 0, "disk full"), [9, 1, 1, 0, "disk full"]),
    MessageType.LAST_DECIDED_REQUEST: (LastDecidedRequest(44, (("A", "s"), ("B", "t"))),
                                       [44, [["A", "s"], ["B", "t"]]]),
    MessageType.LAST_DECIDED_REPLY: (LastDecidedReply(44, (D("19.77"), None), (1.5, 0.0), "", (1.0, 0.0), (3, -1)),
                                     [44, ["19.77", ""], [1.5, 0.0], "", [1.0, 0.0], [3, -1]]),
    MessageType.LEDGER_QUERY: (LedgerQuery(45, "decisions", ("B", "s", [1.5, 1.0, 3], 100)),
                               [45, "decisions", ["B", "s", [1.5, 1.0, 3], 100]]),
    MessageType.LEDGER_QUERY_REPLY: (LedgerQueryReply(45, QueryStatus.OK, {"rows": [["B", 2.5, None, True]]}),
                                     [45, "ok", {"rows": [["B", 2.5, None, True]]}, ""]),
}


@pytest.mark.parametrize("kind", list(GOLDEN), ids=lambda kind: kind.name)
def test_golden_frame(kind: MessageType) -> None:
    message, fields = GOLDEN[kind]
    golden = frame(PROTOCOL_VERSION, int(kind), *fields)
    assert protocol.encode(message) == golden
    assert protocol.decode(golden) == message


def test_every_message_type_has_a_golden_frame() -> None:
    assert set(GOLDEN) == set(MessageType)
    assert {type(message) for message, _ in GOLDEN.values()} == set(get_args(Message))


def test_a_frame_with_several_bad_fields_names_the_first_in_declared_order() -> None:
    with pytest.raises(ProtocolError, match=r"^seq:"):
        protocol.decode(frame(PROTOCOL_VERSION, MessageType.TICK, -1, 1.0, 1.0, 0.0, 1.0))
    with pytest.raises(ProtocolError, match=r"^books:"):  # each field's own check comes before _check
        protocol.decode(_windows_request(books=["a", ""]))


# --- declaring a message -------------------------------------------------------------------------


@protocol.message(MessageType.TICK)
class Probe:
    """A message as a newcomer would add one (not in the Message union: its code is borrowed)."""

    book: str = protocol.wire(protocol.text())
    prices: tuple[Decimal, ...] = protocol.wire(protocol.window)
    note: str = protocol.wire(protocol.text(10, empty=True), default="")

    def _check(self) -> None:
        if self.note == "refuse":
            raise ProtocolError("note: refused")


def test_a_declared_message_gets_its_fields_read_and_written_from_its_declaration() -> None:
    spec = protocol._spec_of(Probe)
    assert (spec.kind, spec.arity, spec.names) == (MessageType.TICK, 3, ("book", "prices", "note"))
    assert spec.fields(Probe("b", (D("1.50"),))) == ["b", ["1.50"], ""]
    assert spec.read(["b", ["1.50"], "hi"]) == Probe("b", (D("1.50"),), "hi")
    with pytest.raises(ProtocolError, match="book: expected a string"):
        spec.read(["", [], ""])
    with pytest.raises(ProtocolError, match="note: refused"):  # after every field's own check
        spec.read(["b", [], "refuse"])
    with pytest.raises(AttributeError):
        Probe("b", ()).book = "c"  # type: ignore[misc]  # frozen, as every message


def test_a_field_without_a_codec_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match=r"Bad\.n: a message's fields are declared with wire\(codec\)"):
        @protocol.message(MessageType.TICK)
        class Bad:
            book: str = protocol.wire(protocol.text())
            n: int = 0


def test_every_code_has_exactly_one_class() -> None:
    classes = get_args(Message)
    assert len(protocol._index(classes)) == len(MessageType)
    with pytest.raises(TypeError, match="Probe and Tick are both TICK"):
        protocol._index((*classes, Probe))
    with pytest.raises(TypeError, match="no class in the Message union declares MessageType LEDGER_ACK"):
        protocol._index(tuple(cls for cls in classes if cls is not LedgerAck))
    with pytest.raises(TypeError, match="int is not declared with @message"):
        protocol._index((*classes, int))


# --- refused requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(frame(1, 2, 41, "B" * 129, 3, 5), (MessageType.LAST_PRICES_REQUEST, 41, 3, "B" * 128, 0),
                 id="long-book-cut"),
    pytest.param(frame(1, 2, 41, "A", 3, 0), (MessageType.LAST_PRICES_REQUEST, 41, 3, "A", 0), id="zero-count"),
    pytest.param(frame(1, 2, 41), (MessageType.LAST_PRICES_REQUEST, 41, 0, "?", 0), id="id-only"),
    pytest.param(frame(1, 2, 41, "", -3, 5, "extra"), (MessageType.LAST_PRICES_REQUEST, 41, 0, "?", 0),
                 id="bad-book-tick-and-arity"),
    pytest.param(frame(1, 8, 43, 7, 5, ["A", "", "B"]), (MessageType.WINDOWS_REQUEST, 43, 7, "?", 3), id="bad-book"),
    pytest.param(frame(1, 8, 43, 0, 5, ["A"] * 1001), (MessageType.WINDOWS_REQUEST, 43, 0, "?", 0),
                 id="too-many-books"),
    pytest.param(frame(1, 8, 43, 0, 5, "A"), (MessageType.WINDOWS_REQUEST, 43, 0, "?", 0), id="books-not-a-list"),
])
def test_an_invalid_request_with_a_readable_id_is_refused_with_what_can_be_echoed(
        data: bytes, expected: tuple[MessageType, int, int, str, int]) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode(data)
    refused = protocol.refused_request(data)
    assert refused is not None
    assert (refused.kind, refused.request_id, refused.tick, refused.book, refused.books) == expected


@pytest.mark.parametrize("data", [
    frame(1, 2, "x", "A", 0, 5),
    frame(1, 2, -1, "A", 0, 5),
    frame(1, 2, True, "A", 0, 5),
    frame(1, 2),
    frame(2, 2, 41, "A", 0, 5),  # another version
    frame(1, True, 41, "A", 0, 5),
    frame(1, MessageType.LAST_DECIDED_REQUEST, 41, "x"),  # not a DataManager request
    frame(1, MessageType.TICK, 41, 1.0, 1.0, 0.0, 1.0),
    b"\xc1",
    b"\x00" * (MAX_FRAME_BYTES + 1),
], ids=["str-id", "negative-id", "bool-id", "no-id", "version-2", "bool-type", "ledger-request", "tick", "garbage",
        "oversized"])
def test_a_frame_without_a_readable_request_id_is_not_answered(data: bytes) -> None:
    assert protocol.refused_request(data) is None


def test_unpacked_checks_the_envelope_and_leaves_the_fields_to_their_reader() -> None:
    good = protocol.encode(LedgerAck(9, 1, 1, 0, "disk full"))
    assert protocol.unpacked(good) == (MessageType.LEDGER_ACK, [9, 1, 1, 0, "disk full"])
    assert protocol.unpacked(frame(PROTOCOL_VERSION, MessageType.LEDGER_ACK, -1, "x", 1, 0, "")) == (
        MessageType.LEDGER_ACK, [-1, "x", 1, 0, ""])  # values unchecked
    for bad in (frame(PROTOCOL_VERSION, MessageType.LEDGER_ACK, 9, 1, 1, 0), frame(PROTOCOL_VERSION + 1, 11, 9),
                frame(PROTOCOL_VERSION, 99, 9), b"\xc1", good + b"\x00" * MAX_FRAME_BYTES):
        with pytest.raises(ProtocolError):
            protocol.unpacked(bad)
    assert protocol.field_names(LedgerAck) == ("batch_id", "stored", "duplicates", "rejected", "error")
