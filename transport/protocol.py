"""Every message the actors exchange, and the one codec that packs and unpacks them.

A frame is a msgpack array ``[version, type, *fields]``: positional fields keep frames small and
decoding fast, the version lets a future change be rejected cleanly instead of misread. Nothing else
in the code base packs or unpacks bytes (as locust's ``rpc/protocol.py``); ``decode`` validates every
field and raises :class:`ProtocolError` -- a value the socket edge counts and logs, never a crash.

Money crosses the wire as decimal strings, never floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final, TypeVar, overload

import msgpack

from transport import limits

PROTOCOL_VERSION: Final = 1
# The bounds a frame is checked against (transport.limits holds them for every part of the system).
MAX_FRAME_BYTES: Final = limits.FRAME_MAX_BYTES
MAX_BOOK_ID_LEN: Final = limits.BOOK_ID_MAX_LEN
MAX_WINDOW: Final = limits.WINDOW_MAX
MAX_COUNTERS: Final = 128
MAX_GUARDRAILS: Final = 8


class ProtocolError(ValueError):
    """A frame that is not a valid message of this protocol version."""


class MessageType(IntEnum):
    TICK = 1
    LAST_PRICES_REQUEST = 2
    LAST_PRICES_REPLY = 3
    DECISION = 4
    HEARTBEAT = 5
    SUPERVISOR_EVENT = 6
    ACTOR_STATUS = 7
    WINDOWS_REQUEST = 8
    WINDOWS_REPLY = 9
    # 10..19: the Ledger
    LEDGER_BATCH = 10
    LEDGER_ACK = 11
    LAST_DECIDED_REQUEST = 12
    LAST_DECIDED_REPLY = 13


@dataclass(frozen=True, slots=True)
class Tick:
    """Published by the Scheduler. ``seq`` counts whole intervals since the run's start ``t0``; a
    run is identified by ``(t0, interval)``, so a receiver tells a restarted Scheduler's new run (seq
    from 0 again) from ticks going backwards, and checks a seq against the wall clock."""

    seq: int
    scheduled_at: float  # t0 + seq * interval, wall clock seconds
    sent_at: float
    interval: float  # seconds, within limits.TICK_MIN..TICK_MAX
    t0: float = 0.0  # the run's start, wall clock seconds (epoch)


@dataclass(frozen=True, slots=True)
class LastPricesRequest:
    """Ask the DataManager for the last ``count`` competitor prices of ``book`` as of tick ``tick``."""

    request_id: int
    book: str
    tick: int
    count: int


@dataclass(frozen=True, slots=True)
class LastPricesReply:
    """The window of prices, oldest first; ``error`` is empty on success."""

    request_id: int
    book: str
    tick: int
    prices: tuple[Decimal, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """One priced book: everything needed to explain the price."""

    ts: float
    tick: int
    book: str
    strategy: str
    prices: tuple[Decimal, ...]
    avg_comp_price: Decimal
    request_id: int
    sold: bool
    price: Decimal  # what was set: the rule's price after the guardrails
    rule_price: Decimal | None = None  # what the rule said, when the guardrails are configured
    guardrail: tuple[str, ...] = ()  # the guardrails that moved the price, in the order applied
    run: float = 0.0  # the Scheduler run's t0 (Tick.t0): with ``tick``, says which tick of which run


@dataclass(frozen=True, slots=True)
class WindowsRequest:
    """Ask the DataManager for the last ``count`` prices of many books as of tick ``tick`` at once
    (one request per batch of a tick's books instead of one per book)."""

    request_id: int
    tick: int
    count: int
    books: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WindowsReply:
    """One window per requested book, in the request's order; ``errors[i]`` is empty on success (then
    ``windows[i]`` holds ``count`` prices) or says why book i has no window (then it is empty)."""

    request_id: int
    tick: int
    windows: tuple[tuple[Decimal, ...], ...]
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LedgerBatch:
    """Decisions for the Ledger to keep (an Algorithm's DEALER to the Ledger's ROUTER), at most
    ``limits.LEDGER_BATCH_MAX``; the Ledger answers with a :class:`LedgerAck` of the same ``batch_id``."""

    batch_id: int
    decisions: tuple[Decision, ...]


@dataclass(frozen=True, slots=True)
class LedgerAck:
    """The Ledger's answer to a batch. ``error`` empty: the batch is committed (``stored`` new,
    ``duplicates`` already kept, ``rejected`` invalid and never to be sent again). ``error`` set: nothing
    of it was committed; send it again later."""

    batch_id: int
    stored: int
    duplicates: int
    rejected: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class LastDecidedRequest:
    """Ask the Ledger for the last decided price of each (book, strategy) pair, at most
    ``limits.LEDGER_QUERY_MAX`` pairs; an empty request is answered at once (a probe)."""

    request_id: int
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class LastDecidedReply:
    """One entry per requested pair, in order: the price (None if the pair has no decision kept), its
    decision time (epoch seconds, 0 if none), and the run (t0) and tick it was decided for (0 and -1
    if none; both tuples empty: not told): a restarted Algorithm does not decide that tick again.
    ``error`` set: no answer (every tuple empty)."""

    request_id: int
    prices: tuple[Decimal | None, ...]
    ts: tuple[float, ...]
    error: str = ""
    runs: tuple[float, ...] = ()
    ticks: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent by every actor from its event loop, so a blocked loop misses it; once more with ``seq``
    :data:`FINAL_HEARTBEAT_SEQ` after the actor has stopped, carrying its final counters."""

    actor: str
    pid: int
    seq: int
    sent_at: float
    counters: dict[str, int] = field(default_factory=dict)


FINAL_HEARTBEAT_SEQ: Final = 2**62


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Published by the launcher (``--events``): a child started, exited, hung, is being stopped or
    stopped, or was given up on ("failed": it kept exiting with a configuration error; the launcher
    then stops). Last of all, "stopped" for the actor "launcher" itself."""

    ts: float
    event: str  # one of SUPERVISOR_EVENTS
    actor: str
    pid: int
    detail: str = ""  # for people: what happened, in words
    exitcode: int = 0  # exited, stopped, failed: the exit code, or minus the signal that killed it
    restart_in: float = 0.0  # exited: seconds until the restart


SUPERVISOR_EVENTS: Final = ("started", "exited", "hung", "stopping", "stopped", "failed")


@dataclass(frozen=True, slots=True)
class ActorStatus:
    """Published by the launcher (``--events``) for each supervised process whenever its counters
    arrive and every ``--status-every`` seconds; ``actor`` "launcher" carries the launcher's own
    counters and, in ``rss_kib``/``pss_kib``, the totals over every process. Times are wall clock
    seconds, 0 when unknown (``pid`` 0: not running)."""

    ts: float
    actor: str
    pid: int
    rss_kib: int
    pss_kib: int
    restarts: int
    hangs: int
    up_since: float
    last_beat: float
    counters: dict[str, int] = field(default_factory=dict)


Message = (Tick | LastPricesRequest | LastPricesReply | Decision | Heartbeat | SupervisorEvent | ActorStatus
           | WindowsRequest | WindowsReply
           | LedgerBatch | LedgerAck | LastDecidedRequest | LastDecidedReply)


# --- encoding ------------------------------------------------------------------------------------


def _money(values: tuple[Decimal, ...]) -> list[str]:
    return [str(v) for v in values]


def _decision_fields(d: Decision) -> list[Any]:
    return [d.ts, d.tick, d.book, d.strategy, _money(d.prices), str(d.avg_comp_price), d.request_id, d.sold,
            str(d.price), "" if d.rule_price is None else str(d.rule_price), list(d.guardrail), d.run]


def encode(message: Message) -> bytes:
    """Pack one message into a frame."""
    fields: list[Any]
    match message:
        case Tick():
            fields = [MessageType.TICK, message.seq, message.scheduled_at, message.sent_at, message.interval,
                      message.t0]
        case LastPricesRequest():
            fields = [
                MessageType.LAST_PRICES_REQUEST,
                message.request_id,
                message.book,
                message.tick,
                message.count,
            ]
        case LastPricesReply():
            fields = [
                MessageType.LAST_PRICES_REPLY,
                message.request_id,
                message.book,
                message.tick,
                _money(message.prices),
                message.error,
            ]
        case Decision():
            fields = [MessageType.DECISION, *_decision_fields(message)]
        case Heartbeat():
            fields = [
                MessageType.HEARTBEAT,
                message.actor,
                message.pid,
                message.seq,
                message.sent_at,
                message.counters,
            ]
        case SupervisorEvent():
            fields = [MessageType.SUPERVISOR_EVENT, message.ts, message.event, message.actor, message.pid,
                      message.detail, message.exitcode, message.restart_in]
        case WindowsRequest():
            fields = [MessageType.WINDOWS_REQUEST, message.request_id, message.tick, message.count,
                      list(message.books)]
        case WindowsReply():
            fields = [MessageType.WINDOWS_REPLY, message.request_id, message.tick,
                      [_money(window) for window in message.windows], list(message.errors)]
        case LedgerBatch():
            fields = [MessageType.LEDGER_BATCH, message.batch_id, [_decision_fields(d) for d in message.decisions]]
        case LedgerAck():
            fields = [MessageType.LEDGER_ACK, message.batch_id, message.stored, message.duplicates, message.rejected,
                      message.error]
        case LastDecidedRequest():
            fields = [MessageType.LAST_DECIDED_REQUEST, message.request_id, [list(pair) for pair in message.pairs]]
        case LastDecidedReply():
            fields = [MessageType.LAST_DECIDED_REPLY, message.request_id,
                      ["" if price is None else str(price) for price in message.prices], list(message.ts),
                      message.error, list(message.runs), list(message.ticks)]
        case ActorStatus():
            fields = [MessageType.ACTOR_STATUS, message.ts, message.actor, message.pid, message.rss_kib,
                      message.pss_kib, message.restarts, message.hangs, message.up_since, message.last_beat,
                      message.counters]
    frame: bytes = msgpack.packb([PROTOCOL_VERSION, *fields], use_bin_type=True)
    return frame


# --- decoding ------------------------------------------------------------------------------------


def _int(value: Any, name: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    if type(value) is not int or not minimum <= value <= maximum:
        raise ProtocolError(f"{name}: expected an integer in {minimum}..{maximum}, got {value!r:.40}")
    return value


def _float(value: Any, name: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ProtocolError(f"{name}: expected a finite number, got {value!r:.40}")
    return float(value)


def _str(value: Any, name: str, max_len: int = MAX_BOOK_ID_LEN, allow_empty: bool = False) -> str:
    if type(value) is not str or len(value) > max_len or (not value and not allow_empty):
        raise ProtocolError(f"{name}: expected a string of 1..{max_len} characters, got {value!r:.40}")
    return value


def _decimal(value: Any, name: str) -> Decimal:
    if type(value) is not str or len(value) > 40:
        raise ProtocolError(f"{name}: expected a decimal string, got {value!r:.40}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ProtocolError(f"{name}: not a decimal: {value!r:.40}") from None
    if not number.is_finite():
        raise ProtocolError(f"{name}: not finite: {value!r:.40}")
    return number


def _prices(value: Any, name: str) -> tuple[Decimal, ...]:
    if type(value) is not list or len(value) > MAX_WINDOW:
        raise ProtocolError(f"{name}: expected a list of at most {MAX_WINDOW} prices")
    # The checks of _decimal, done in bulk (a batch reply holds thousands of prices); any doubt goes
    # back to _decimal for the exact error.
    if all(type(v) is str and len(v) <= 40 for v in value):
        try:
            prices = tuple(map(Decimal, value))
        except InvalidOperation:
            pass
        else:
            if all(p.is_finite() for p in prices):
                return prices
    return tuple(_decimal(v, name) for v in value)


def _strings(value: Any, name: str, max_items: int, max_len: int, allow_empty: bool = True) -> tuple[str, ...]:
    if type(value) is not list or len(value) > max_items:
        raise ProtocolError(f"{name}: expected a list of at most {max_items} strings")
    return tuple(_str(v, name, max_len, allow_empty) for v in value)


def _bool(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise ProtocolError(f"{name}: expected a boolean, got {value!r:.40}")
    return value


def _counters(value: Any) -> dict[str, int]:
    if type(value) is not dict or len(value) > MAX_COUNTERS:
        raise ProtocolError(f"counters: expected a map of at most {MAX_COUNTERS} entries")
    # Counters may be gauges (e.g. "last_tick" is -1 before the first tick): any 64-bit integer.
    return {_str(k, "counter name", 64): _int(v, "counter value", -(2**63)) for k, v in value.items()}


_ARITY: Final = MappingProxyType({
    MessageType.TICK: 5,
    MessageType.LAST_PRICES_REQUEST: 4,
    MessageType.LAST_PRICES_REPLY: 5,
    MessageType.DECISION: 12,
    MessageType.HEARTBEAT: 5,
    MessageType.SUPERVISOR_EVENT: 7,
    MessageType.ACTOR_STATUS: 10,
    MessageType.WINDOWS_REQUEST: 4,
    MessageType.WINDOWS_REPLY: 4,
    MessageType.LEDGER_BATCH: 2,
    MessageType.LEDGER_ACK: 5,
    MessageType.LAST_DECIDED_REQUEST: 2,
    MessageType.LAST_DECIDED_REPLY: 6,
})


_M = TypeVar("_M", Tick, LastPricesRequest, LastPricesReply, Decision, Heartbeat, SupervisorEvent, ActorStatus,
             WindowsRequest, WindowsReply, LedgerBatch, LedgerAck, LastDecidedRequest, LastDecidedReply)
_N = TypeVar("_N", Tick, LastPricesRequest, LastPricesReply, Decision, Heartbeat, SupervisorEvent, ActorStatus,
             WindowsRequest, WindowsReply, LedgerBatch, LedgerAck, LastDecidedRequest, LastDecidedReply)


def _decision(f: Any) -> Decision:
    if type(f) is not list or len(f) != _ARITY[MessageType.DECISION]:
        raise ProtocolError(f"decision: expected a list of {_ARITY[MessageType.DECISION]} fields")
    rule_price = None if f[9] == "" else _decimal(f[9], "rule_price")
    return Decision(_float(f[0], "ts"), _int(f[1], "tick"), _str(f[2], "book"),
                    _str(f[3], "strategy", limits.STRATEGY_NAME_MAX_LEN), _prices(f[4], "prices"),
                    _decimal(f[5], "avg_comp_price"), _int(f[6], "request_id"), _bool(f[7], "sold"),
                    _decimal(f[8], "price"), rule_price, _strings(f[10], "guardrail", MAX_GUARDRAILS, 32),
                    _float(f[11], "run"))


def _ledger_batch(f: list[Any]) -> LedgerBatch:
    if type(f[1]) is not list or not 1 <= len(f[1]) <= limits.LEDGER_BATCH_MAX:
        raise ProtocolError(f"decisions: expected a list of 1..{limits.LEDGER_BATCH_MAX} decisions")
    return LedgerBatch(_int(f[0], "batch_id"), tuple(_decision(d) for d in f[1]))


def _last_decided_request(f: list[Any]) -> LastDecidedRequest:
    if type(f[1]) is not list or len(f[1]) > limits.LEDGER_QUERY_MAX:
        raise ProtocolError(f"pairs: expected a list of at most {limits.LEDGER_QUERY_MAX} pairs")
    pairs: list[tuple[str, str]] = []
    for pair in f[1]:
        if type(pair) is not list or len(pair) != 2:
            raise ProtocolError("pair: expected [book, strategy]")
        pairs.append((_str(pair[0], "book"), _str(pair[1], "strategy", limits.STRATEGY_NAME_MAX_LEN)))
    return LastDecidedRequest(_int(f[0], "request_id"), tuple(pairs))


def _last_decided_reply(f: list[Any]) -> LastDecidedReply:
    if type(f[1]) is not list or type(f[2]) is not list or len(f[1]) != len(f[2]) \
            or len(f[1]) > limits.LEDGER_QUERY_MAX:
        raise ProtocolError(f"prices, ts: two lists of the same length, at most {limits.LEDGER_QUERY_MAX}")
    if type(f[4]) is not list or type(f[5]) is not list or len(f[4]) != len(f[5]) or len(f[4]) not in (0, len(f[1])):
        raise ProtocolError("runs, ticks: two lists as long as prices (or both empty: not told)")
    prices = tuple(None if p == "" else _decimal(p, "price") for p in f[1])
    return LastDecidedReply(_int(f[0], "request_id"), prices, tuple(_float(t, "ts") for t in f[2]),
                            _str(f[3], "error", 500, allow_empty=True), tuple(_float(r, "run") for r in f[4]),
                            tuple(_int(t, "tick", -1) for t in f[5]))


def _tick(f: list[Any]) -> Tick:
    interval = _float(f[3], "interval")
    if not limits.TICK_MIN <= interval <= limits.TICK_MAX:  # <= 0 would make every seq plausible
        raise ProtocolError(f"interval: expected {limits.TICK_MIN}..{limits.TICK_MAX:.0f} seconds, "
                            f"got {interval!r:.40}")
    return Tick(_int(f[0], "seq"), _float(f[1], "scheduled_at"), _float(f[2], "sent_at"), interval,
                _float(f[4], "t0"))


def _last_prices_request(f: list[Any]) -> LastPricesRequest:
    count = _int(f[3], "count", 1)
    if count > MAX_WINDOW:
        raise ProtocolError(f"count: at most {MAX_WINDOW}, got {count}")
    return LastPricesRequest(_int(f[0], "request_id"), _str(f[1], "book"), _int(f[2], "tick"), count)


def _last_prices_reply(f: list[Any]) -> LastPricesReply:
    return LastPricesReply(_int(f[0], "request_id"), _str(f[1], "book"), _int(f[2], "tick"),
                           _prices(f[3], "prices"), _str(f[4], "error", 500, allow_empty=True))


def _heartbeat(f: list[Any]) -> Heartbeat:
    return Heartbeat(_str(f[0], "actor", 64), _int(f[1], "pid"), _int(f[2], "seq"),
                     _float(f[3], "sent_at"), _counters(f[4]))


def _supervisor_event(f: list[Any]) -> SupervisorEvent:
    event = _str(f[1], "event", 16)
    if event not in SUPERVISOR_EVENTS:
        raise ProtocolError(f"event: unknown supervisor event {event!r:.20}")
    restart_in = _float(f[6], "restart_in")
    if restart_in < 0:
        raise ProtocolError(f"restart_in: expected a number >= 0, got {restart_in!r:.40}")
    return SupervisorEvent(_float(f[0], "ts"), event, _str(f[2], "actor", 64), _int(f[3], "pid"),
                           _str(f[4], "detail", 500, allow_empty=True), _int(f[5], "exitcode", -255, 255),
                           restart_in)


def _actor_status(f: list[Any]) -> ActorStatus:
    return ActorStatus(_float(f[0], "ts"), _str(f[1], "actor", 64), _int(f[2], "pid"),
                       _int(f[3], "rss_kib"), _int(f[4], "pss_kib"), _int(f[5], "restarts"),
                       _int(f[6], "hangs"), _float(f[7], "up_since"), _float(f[8], "last_beat"),
                       _counters(f[9]))


def _windows_request(f: list[Any]) -> WindowsRequest:
    count = _int(f[2], "count", 1, MAX_WINDOW)
    books = _strings(f[3], "books", limits.BATCH_BOOKS_MAX, MAX_BOOK_ID_LEN, allow_empty=False)
    if not books or count * len(books) > limits.BATCH_PRICES_MAX:
        raise ProtocolError(f"books: 1..{limits.BATCH_BOOKS_MAX} books and at most "
                            f"{limits.BATCH_PRICES_MAX} prices in all, got {len(books)} x {count}")
    return WindowsRequest(_int(f[0], "request_id"), _int(f[1], "tick"), count, books)


def _windows_reply(f: list[Any]) -> WindowsReply:
    if type(f[2]) is not list or len(f[2]) > limits.BATCH_BOOKS_MAX:
        raise ProtocolError(f"windows: expected a list of at most {limits.BATCH_BOOKS_MAX} windows")
    windows = tuple(_prices(window, "windows") for window in f[2])
    errors = _strings(f[3], "errors", limits.BATCH_BOOKS_MAX, 500)
    if len(errors) != len(windows):
        raise ProtocolError(f"errors: {len(errors)} entries for {len(windows)} windows")
    return WindowsReply(_int(f[0], "request_id"), _int(f[1], "tick"), windows, errors)


def _ledger_ack(f: list[Any]) -> LedgerAck:
    return LedgerAck(_int(f[0], "batch_id"), _int(f[1], "stored"), _int(f[2], "duplicates"),
                     _int(f[3], "rejected"), _str(f[4], "error", 500, allow_empty=True))


# How each message type is read from its fields (their number checked against _ARITY first).
_DECODERS: Final[MappingProxyType[MessageType, Callable[[list[Any]], Message]]] = MappingProxyType({
    MessageType.TICK: _tick,
    MessageType.LAST_PRICES_REQUEST: _last_prices_request,
    MessageType.LAST_PRICES_REPLY: _last_prices_reply,
    MessageType.DECISION: _decision,
    MessageType.HEARTBEAT: _heartbeat,
    MessageType.SUPERVISOR_EVENT: _supervisor_event,
    MessageType.ACTOR_STATUS: _actor_status,
    MessageType.WINDOWS_REQUEST: _windows_request,
    MessageType.WINDOWS_REPLY: _windows_reply,
    MessageType.LEDGER_BATCH: _ledger_batch,
    MessageType.LEDGER_ACK: _ledger_ack,
    MessageType.LAST_DECIDED_REQUEST: _last_decided_request,
    MessageType.LAST_DECIDED_REPLY: _last_decided_reply,
})


@overload
def decode_as(frame: bytes, kind: type[_M], /) -> _M: ...


@overload
def decode_as(frame: bytes, kind: type[_M], other: type[_N], /) -> _M | _N: ...


def decode_as(frame: bytes, *kinds: type[Any]) -> Message:
    """Decode a frame that must hold a message of one of ``kinds``: anything else is a
    :class:`ProtocolError`."""
    message = decode(frame)
    expected_kind = isinstance(message, kinds)
    if not expected_kind:
        expected = " or ".join(kind.__name__ for kind in kinds)
        raise ProtocolError(f"unexpected {type(message).__name__} (expected {expected})")
    return message


def decode(frame: bytes) -> Message:
    """Unpack and validate one frame; raise :class:`ProtocolError` for anything else."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    try:
        raw = msgpack.unpackb(frame, raw=False, strict_map_key=True)  # size checked above
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise ProtocolError(f"not msgpack: {type(exc).__name__}") from None
    if type(raw) is not list or len(raw) < 2:
        raise ProtocolError("not a [version, type, ...] array")
    version, kind, *f = raw
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {version!r:.20} (expected {PROTOCOL_VERSION})")
    if type(kind) is not int:
        raise ProtocolError(f"unknown message type {kind!r:.20} (not an integer)")
    try:
        kind = MessageType(kind)
    except (ValueError, TypeError):
        raise ProtocolError(f"unknown message type {kind!r:.20}") from None
    if len(f) != _ARITY[kind]:
        raise ProtocolError(f"{kind.name}: expected {_ARITY[kind]} fields, got {len(f)}")
    return _DECODERS[kind](f)


@dataclass(frozen=True, slots=True)
class RefusedRequest:
    """What can be read of a request frame that failed validation: enough to answer it with an error
    instead of silence (a client left without a reply times out and reconnects). ``books`` is the number
    of books of a WindowsRequest when its list is usable, else 0."""

    kind: MessageType
    request_id: int
    tick: int
    book: str
    books: int


def refused_request(frame: bytes) -> RefusedRequest | None:
    """For a frame :func:`decode` refused: the request's id and what else can be echoed, when the frame
    is a request of this protocol version whose ``request_id`` is valid; None otherwise."""
    if len(frame) > MAX_FRAME_BYTES:
        return None
    try:
        raw = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception:  # msgpack raises several unrelated types for garbage
        return None
    if type(raw) is not list or len(raw) < 3 or raw[0] != PROTOCOL_VERSION or type(raw[0]) is not int:
        return None
    kind, request_id = raw[1], raw[2]
    if kind not in (MessageType.LAST_PRICES_REQUEST, MessageType.WINDOWS_REQUEST) or type(kind) is not int:
        return None
    if type(request_id) is not int or not 0 <= request_id <= 2**63 - 1:
        return None
    fields = raw[3:]
    if kind == MessageType.LAST_PRICES_REQUEST:
        book, tick = [*fields, None, None][:2]
        books = 0
    else:
        tick, book = [*fields, None][0], None
        listed = fields[2] if len(fields) > 2 else None
        books = len(listed) if type(listed) is list and 0 < len(listed) <= limits.BATCH_BOOKS_MAX else 0
    echo = book[:MAX_BOOK_ID_LEN] if type(book) is str and book else "?"
    tick = tick if type(tick) is int and 0 <= tick <= 2**63 - 1 else 0
    return RefusedRequest(MessageType(kind), request_id, tick, echo, books)
