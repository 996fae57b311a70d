"""Every message the actors exchange, and the one codec that packs and unpacks them.

A frame is a msgpack array ``[version, type, *fields]``: positional fields keep frames small and
decoding fast, the version lets a future change be rejected cleanly instead of misread. Nothing else
in the code base packs or unpacks bytes (as locust's ``rpc/protocol.py``); ``decode`` validates every
field and raises :class:`ProtocolError` -- a value the socket edge counts and logs, never a crash.

Money crosses the wire as decimal strings, never floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any, Final, TypeVar

import msgpack

PROTOCOL_VERSION: Final = 1
# A reply carries at most a few windows of prices; anything bigger is garbage or an attack.
MAX_FRAME_BYTES: Final = 64 * 1024
MAX_BOOK_ID_LEN: Final = 128
MAX_WINDOW: Final = 64
MAX_COUNTERS: Final = 64


class ProtocolError(ValueError):
    """A frame that is not a valid message of this protocol version."""


class MessageType(IntEnum):
    TICK = 1
    LAST_PRICES_REQUEST = 2
    LAST_PRICES_REPLY = 3
    DECISION = 4
    HEARTBEAT = 5
    SUPERVISOR_EVENT = 6


@dataclass(frozen=True, slots=True)
class Tick:
    """Published by the Scheduler. ``seq`` counts whole intervals since the run's start ``t0``."""

    seq: int
    scheduled_at: float  # t0 + seq * interval, wall clock seconds
    sent_at: float
    interval: float


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
    price: Decimal


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent by every actor from its event loop, so a blocked loop misses it."""

    actor: str
    pid: int
    seq: int
    sent_at: float
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Published by the launcher (``--events``): a child started, exited, hung, or is being stopped."""

    ts: float
    event: str  # one of SUPERVISOR_EVENTS
    actor: str
    pid: int
    detail: str = ""


SUPERVISOR_EVENTS: Final = ("started", "exited", "hung", "stopping", "stopped")

Message = Tick | LastPricesRequest | LastPricesReply | Decision | Heartbeat | SupervisorEvent


# --- encoding ------------------------------------------------------------------------------------


def _money(values: tuple[Decimal, ...]) -> list[str]:
    return [str(v) for v in values]


def encode(message: Message) -> bytes:
    """Pack one message into a frame."""
    fields: list[Any]
    match message:
        case Tick():
            fields = [MessageType.TICK, message.seq, message.scheduled_at, message.sent_at, message.interval]
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
            fields = [
                MessageType.DECISION,
                message.ts,
                message.tick,
                message.book,
                message.strategy,
                _money(message.prices),
                str(message.avg_comp_price),
                message.request_id,
                message.sold,
                str(message.price),
            ]
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
                      message.detail]
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
    return tuple(_decimal(v, name) for v in value)


def _bool(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise ProtocolError(f"{name}: expected a boolean, got {value!r:.40}")
    return value


def _counters(value: Any) -> dict[str, int]:
    if type(value) is not dict or len(value) > MAX_COUNTERS:
        raise ProtocolError(f"counters: expected a map of at most {MAX_COUNTERS} entries")
    # Counters may be gauges (e.g. "last_tick" is -1 before the first tick): any 64-bit integer.
    return {_str(k, "counter name", 64): _int(v, "counter value", -(2**63)) for k, v in value.items()}


_ARITY: Final = {
    MessageType.TICK: 4,
    MessageType.LAST_PRICES_REQUEST: 4,
    MessageType.LAST_PRICES_REPLY: 5,
    MessageType.DECISION: 9,
    MessageType.HEARTBEAT: 5,
    MessageType.SUPERVISOR_EVENT: 5,
}


_M = TypeVar("_M", Tick, LastPricesRequest, LastPricesReply, Decision, Heartbeat, SupervisorEvent)


def decode_as(frame: bytes, kind: type[_M]) -> _M:
    """Decode a frame that must hold a ``kind`` message: anything else is a :class:`ProtocolError`."""
    message = decode(frame)
    if not isinstance(message, kind):
        raise ProtocolError(f"unexpected {type(message).__name__} (expected {kind.__name__})")
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
    match kind:
        case MessageType.TICK:
            return Tick(_int(f[0], "seq"), _float(f[1], "scheduled_at"), _float(f[2], "sent_at"),
                        _float(f[3], "interval"))
        case MessageType.LAST_PRICES_REQUEST:
            count = _int(f[3], "count", 1)
            if count > MAX_WINDOW:
                raise ProtocolError(f"count: at most {MAX_WINDOW}, got {count}")
            return LastPricesRequest(_int(f[0], "request_id"), _str(f[1], "book"), _int(f[2], "tick"), count)
        case MessageType.LAST_PRICES_REPLY:
            return LastPricesReply(_int(f[0], "request_id"), _str(f[1], "book"), _int(f[2], "tick"),
                                   _prices(f[3], "prices"), _str(f[4], "error", 500, allow_empty=True))
        case MessageType.DECISION:
            return Decision(_float(f[0], "ts"), _int(f[1], "tick"), _str(f[2], "book"),
                            _str(f[3], "strategy", 64), _prices(f[4], "prices"),
                            _decimal(f[5], "avg_comp_price"), _int(f[6], "request_id"),
                            _bool(f[7], "sold"), _decimal(f[8], "price"))
        case MessageType.HEARTBEAT:
            return Heartbeat(_str(f[0], "actor", 64), _int(f[1], "pid"), _int(f[2], "seq"),
                             _float(f[3], "sent_at"), _counters(f[4]))
        case MessageType.SUPERVISOR_EVENT:
            event = _str(f[1], "event", 16)
            if event not in SUPERVISOR_EVENTS:
                raise ProtocolError(f"event: unknown supervisor event {event!r:.20}")
            return SupervisorEvent(_float(f[0], "ts"), event, _str(f[2], "actor", 64), _int(f[3], "pid"),
                                   _str(f[4], "detail", 500, allow_empty=True))
    raise AssertionError(kind)  # pragma: no cover - every MessageType is matched above
