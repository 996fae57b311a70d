"""Every message the actors exchange, and the one codec that packs and unpacks them.

A frame is a msgpack array ``[version, type, *fields]``: positional fields keep frames small and
decoding fast, the version lets a future change be rejected cleanly instead of misread. Nothing else
in the code base packs or unpacks bytes (as locust's ``rpc/protocol.py``); ``decode`` validates every
field and raises :class:`ProtocolError` -- a value the socket edge counts and logs, never a crash.

Money crosses the wire as decimal strings, never floats.

**Adding a message** is one declaration, with its type code and, for each field, the codec that
packs and checks it on the wire::

    @message(MessageType.PRICE_ALERT)                    # its code: a new member of MessageType
    class PriceAlert:
        book: str = wire(text())                         # a 1..128-character string
        price: Decimal = wire(money)                     # a decimal string on the wire
        note: str = wire(text(500, empty=True), default="")

        def _check(self) -> None:                        # optional: checks across fields, after each
            ...                                          # field's own; raise ProtocolError

plus its name in the ``Message`` union below (the static type ``decode`` returns), and a golden frame
in ``tests/transport/test_protocol.py`` (a test fails until it has one). Everything else follows from
the declaration: ``encode`` packs the fields in declared order, ``decode`` checks their number, each
field (errors name the field) and ``_check``; ``decode_as`` and ``refused_request`` read the same
declarations. Importing this module fails with a clear error if a code has no class or two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar, dataclass_transform, get_args, overload

import msgpack

from transport import limits

PROTOCOL_VERSION: Final = 1
# The bounds a frame is checked against (transport.limits holds them for every part of the system).
MAX_FRAME_BYTES: Final = limits.FRAME_MAX_BYTES
MAX_BOOK_ID_LEN: Final = limits.BOOK_ID_MAX_LEN
MAX_WINDOW: Final = limits.WINDOW_MAX
MAX_COUNTERS: Final = 128
MAX_GUARDRAILS: Final = 8
MAX_DECIMAL_TEXT: Final = 40  # a money field's decimal string, in characters
_INT64_MAX: Final = 2**63 - 1

_T = TypeVar("_T")
_C = TypeVar("_C")


class ProtocolError(ValueError):
    """A frame that is not a valid message of this protocol version."""


class MessageType(IntEnum):
    """The type code of every message (the second item of a frame); ``@message(code)`` binds a class."""

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
    LEDGER_QUERY = 14
    LEDGER_QUERY_REPLY = 15


# --- codecs: how one field crosses the wire -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Codec(Generic[_T]):
    """How a field's value crosses the wire. ``reader(name)`` makes the function that checks a wire
    value and returns the field's value, or raises a :class:`ProtocolError` naming the field; ``write``
    makes the wire value of a field's value (None: msgpack packs the value as it is -- a tuple as an
    array)."""

    reader: Callable[[str], Callable[[object], _T]]
    write: Callable[[_T], object] | None = None


def integer(minimum: int = 0, maximum: int = _INT64_MAX) -> Codec[int]:
    """An integer in ``minimum..maximum`` (a bool is no integer here)."""
    def reader(name: str) -> Callable[[object], int]:
        def read(value: Any) -> int:
            if type(value) is not int or not minimum <= value <= maximum:
                raise ProtocolError(f"{name}: expected an integer in {minimum}..{maximum}, got {value!r:.40}")
            return value
        return read
    return Codec(reader)


def _finite_reader(name: str) -> Callable[[object], float]:
    def read(value: Any) -> float:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise ProtocolError(f"{name}: expected a finite number, got {value!r:.40}")
        return float(value)
    return read


def text(max_len: int = MAX_BOOK_ID_LEN, *, empty: bool = False) -> Codec[str]:
    """A string of at most ``max_len`` characters, empty only if ``empty``."""
    def reader(name: str) -> Callable[[object], str]:
        def read(value: Any) -> str:
            if type(value) is not str or len(value) > max_len or (not value and not empty):
                raise ProtocolError(f"{name}: expected a string of 1..{max_len} characters, got {value!r:.40}")
            return value
        return read
    return Codec(reader)


def decimal_text(max_len: int) -> Codec[Decimal]:
    """A finite Decimal, as a decimal string of at most ``max_len`` characters."""
    def reader(name: str) -> Callable[[object], Decimal]:
        def read(value: Any) -> Decimal:
            if type(value) is not str or len(value) > max_len:
                raise ProtocolError(f"{name}: expected a decimal string of at most {max_len} characters, "
                                    f"got {value!r:.40}")
            try:
                number = Decimal(value)
            except InvalidOperation:
                raise ProtocolError(f"{name}: not a decimal: {value!r:.40}") from None
            if not number.is_finite():
                raise ProtocolError(f"{name}: not finite: {value!r:.40}")
            return number
        return read
    return Codec(reader, str)


_money_reader: Final = decimal_text(MAX_DECIMAL_TEXT).reader


def _optional_money_reader(name: str) -> Callable[[object], Decimal | None]:
    read_money = _money_reader(name)

    def read(value: object) -> Decimal | None:
        return None if value == "" else read_money(value)
    return read


def _window_reader(name: str) -> Callable[[object], tuple[Decimal, ...]]:
    read_money = _money_reader(name)

    def read(value: Any) -> tuple[Decimal, ...]:
        if type(value) is not list or len(value) > MAX_WINDOW:
            raise ProtocolError(f"{name}: expected a list of at most {MAX_WINDOW} prices")
        # The checks of a money field, done in bulk and in C (a batch reply holds thousands of prices;
        # per-price generators made the decoding 29x a bare msgpack.unpackb, 2026-12-05): the join
        # refuses anything but strings, and a text Decimal reads as NaN or an infinity holds an "n" or
        # "N" (nan, snan, inf, infinity, any case) where a finite one never does. Any doubt goes back
        # to the checks one by one for the exact error.
        try:
            joined: str | None = "".join(value)
        except TypeError:
            joined = None
        if (joined is not None and "n" not in joined and "N" not in joined
                and (not value or max(map(len, value)) <= MAX_DECIMAL_TEXT)):
            try:
                return tuple(map(Decimal, value))
            except InvalidOperation:
                pass
        return tuple(map(read_money, value))
    return read


def _flag_reader(name: str) -> Callable[[object], bool]:
    def read(value: Any) -> bool:
        if type(value) is not bool:
            raise ProtocolError(f"{name}: expected a boolean, got {value!r:.40}")
        return value
    return read


def _counters_reader(name: str) -> Callable[[object], dict[str, int]]:
    read_name, read_value = text(64).reader("counter name"), integer(-(2**63)).reader("counter value")

    def read(value: Any) -> dict[str, int]:
        if type(value) is not dict or len(value) > MAX_COUNTERS:
            raise ProtocolError(f"{name}: expected a map of at most {MAX_COUNTERS} entries")
        # Counters may be gauges (e.g. "last_tick" is -1 before the first tick): any 64-bit integer.
        return {read_name(k): read_value(v) for k, v in value.items()}
    return read


def _optional_money_string(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _money_strings(values: tuple[Decimal, ...]) -> list[str]:
    return [str(v) for v in values]  # faster than list(map(str, ...)): CPython specialises str(v)


uint: Final = integer()  # 0..2**63-1
finite: Final = Codec(_finite_reader)  # a finite number, read as a float
money: Final = decimal_text(MAX_DECIMAL_TEXT)
# A window's mean as the Algorithm computed it, unrounded: its length follows from the precision
# (limits.MEAN_DIGITS; docs/protocol.md, "Money").
mean: Final = decimal_text(limits.MEAN_TEXT_MAX)
optional_money: Final = Codec(_optional_money_reader, _optional_money_string)  # None as ""
window: Final = Codec(_window_reader, _money_strings)  # at most MAX_WINDOW prices (money)
flag: Final = Codec(_flag_reader)  # a bool
counter_map: Final = Codec(_counters_reader)  # at most MAX_COUNTERS names (1..64 chars) to 64-bit integers


def items(codec: Codec[_T], what: str, max_items: int, *, min_items: int = 0, item: str | None = None,
          refusal: str | None = None) -> Codec[tuple[_T, ...]]:
    """A list of ``min_items..max_items`` values of ``codec``, read as a tuple: ``what`` names them in
    the error, ``item`` names each one (default: the field's name), ``refusal`` replaces the error."""
    def reader(name: str) -> Callable[[object], tuple[_T, ...]]:
        read_item = codec.reader(item or name)
        bounds = f"{min_items}..{max_items}" if min_items else f"at most {max_items}"
        error = refusal or f"{name}: expected a list of {bounds} {what}"

        def read(value: Any) -> tuple[_T, ...]:
            if type(value) is not list or not min_items <= len(value) <= max_items:
                raise ProtocolError(error)
            return tuple(map(read_item, value))
        return read
    write_item = codec.write
    if write_item is None:
        return Codec(reader)

    def write(values: tuple[_T, ...]) -> list[object]:
        return [write_item(v) for v in values]
    return Codec(reader, write)


def texts(max_items: int, max_len: int, *, empty: bool = True) -> Codec[tuple[str, ...]]:
    """At most ``max_items`` strings of ``text(max_len, empty=empty)``."""
    return items(text(max_len, empty=empty), "strings", max_items)


def checked(codec: Codec[_T], ok: Callable[[_T], bool], refusal: str) -> Codec[_T]:
    """``codec``, then ``ok`` of the value it read; if false, a ProtocolError ``"<field>: <refusal>"``
    (``refusal`` may show the value as ``{value}``)."""
    def reader(name: str) -> Callable[[object], _T]:
        read = codec.reader(name)

        def read_checked(value: object) -> _T:
            result = read(value)
            if not ok(result):
                raise ProtocolError(f"{name}: {refusal.format(value=result)}")
            return result
        return read_checked
    return Codec(reader, codec.write)


def nested(cls: type[_C]) -> Codec[_C]:
    """A message inside another, as the array of its fields (no version, no type)."""
    spec = _spec_of(cls)
    read_fields, arity = spec.read, spec.arity

    def reader(name: str) -> Callable[[object], _C]:
        def read(value: Any) -> _C:
            if type(value) is not list or len(value) != arity:
                raise ProtocolError(f"{name}: expected a list of {arity} fields")
            return read_fields(value)
        return read
    return Codec(reader, spec.fields)


# --- declaring a message ------------------------------------------------------------------------

_CODEC: Final = "codec"  # the key of a field's codec in its dataclass metadata


@overload
def wire(codec: Codec[_T]) -> _T: ...


@overload
def wire(codec: Codec[_T], *, default: _T) -> _T: ...


@overload
def wire(codec: Codec[_T], *, default_factory: Callable[[], _T]) -> _T: ...


def wire(codec: Codec[Any], *, default: Any = MISSING, default_factory: Any = MISSING) -> Any:
    """A message's field: its codec on the wire, and its default if it has one."""
    return field(default=default, default_factory=default_factory, metadata=MappingProxyType({_CODEC: codec}))


@dataclass(frozen=True, slots=True)
class _Spec(Generic[_C]):
    """What ``@message`` derives from a class's declaration."""

    kind: MessageType
    cls: type[_C]
    names: tuple[str, ...]
    readers: tuple[Callable[[object], object], ...]
    arity: int
    read: Callable[[list[Any]], _C]  # the message from its wire fields, their number checked before
    fields: Callable[[_C], list[Any]]  # the wire fields of a message

    def raw(self, values: list[Any], name: str) -> Any:
        """The wire value of field ``name`` in a frame's ``values``; None if this message has no such
        field or the frame lacks it."""
        i = self.names.index(name) if name in self.names else len(values)
        return values[i] if i < len(values) else None

    def salvage(self, values: list[Any], name: str) -> Any:
        """Field ``name`` of a frame's ``values`` read with its codec; None if it is missing or invalid."""
        value = self.raw(values, name)
        try:
            return None if value is None else self.readers[self.names.index(name)](value)
        except ProtocolError:
            return None


def _spec(cls: type[_C], kind: MessageType) -> _Spec[_C]:
    declared: tuple[Field[Any], ...] = fields(cls)  # type: ignore[arg-type]  # a dataclass: made just before
    codecs: list[Codec[Any]] = []
    for f in declared:
        codec = f.metadata.get(_CODEC)
        if not isinstance(codec, Codec):
            raise TypeError(f"{cls.__name__}.{f.name}: a message's fields are declared with wire(codec)")
        codecs.append(codec)
    names = tuple(f.name for f in declared)
    readers = tuple(codec.reader(name) for codec, name in zip(codecs, names, strict=True))
    return _Spec(kind, cls, names, readers, len(names), _fields_reader(cls, readers, vars(cls).get("_check")),
                 _fields_writer(names, [codec.write for codec in codecs]))


def _fields_reader(construct: Callable[..., _C], readers: tuple[Callable[[object], object], ...],
                   check: Callable[[_C], None] | None) -> Callable[[list[Any]], _C]:
    """The function ``lambda v: construct(read_0(v[0]), read_1(v[1]), ...)``, then ``check`` of the
    message: each field read by its codec's reader, in declared order."""
    namespace: dict[str, Any] = {"construct": construct, "check": check}
    namespace.update((f"read_{i}", read) for i, read in enumerate(readers))
    fields_read = ", ".join(f"read_{i}(v[{i}])" for i in range(len(readers)))
    checked = "    check(message)\n" if check is not None else ""
    source = f"def read(v):\n    message = construct({fields_read})\n{checked}    return message\n"
    read: Callable[[list[Any]], _C] = _compiled("read", source, namespace)
    return read


def _fields_writer(names: tuple[str, ...], writes: list[Callable[[Any], object] | None]) -> Callable[[Any], list[Any]]:
    """The function ``lambda m: [m.a, write_b(m.b), ...]``: each field's wire value, in declared order."""
    namespace: dict[str, Any] = {}
    values = []
    for i, (name, write) in enumerate(zip(names, writes, strict=True)):
        if not name.isidentifier():
            raise TypeError(f"not a field name: {name!r}")
        if write is None:
            values.append(f"m.{name}")
        else:
            namespace[f"write_{i}"] = write
            values.append(f"write_{i}(m.{name})")
    fields: Callable[[Any], list[Any]] = _compiled("fields", f"def fields(m):\n    return [{', '.join(values)}]\n",
                                                   namespace)
    return fields


def _compiled(name: str, source: str, namespace: dict[str, Any]) -> Any:
    """Function ``name`` of ``source``, compiled once per message (as dataclasses makes ``__init__``):
    as fast as the code once written by hand for each message, where generic loops over the fields
    made encode 1.2 to 1.5 times slower and small messages' decode a few percent (bench/protocol.py)."""
    exec(source, namespace)
    return namespace[name]


@dataclass_transform(frozen_default=True, field_specifiers=(wire,))
def message(kind: MessageType) -> Callable[[type[_C]], type[_C]]:
    """Declare a message class of type code ``kind``: a frozen dataclass whose fields each say, with
    :func:`wire`, how they cross the wire. An optional method ``_check(self)`` checks across fields."""
    def declare(cls: type[_C]) -> type[_C]:
        made = dataclass(frozen=True, slots=True)(cls)
        made._wire = _spec(made, kind)  # type: ignore[attr-defined]
        return made
    return declare


def _spec_of(cls: type[_C]) -> _Spec[_C]:
    spec = vars(cls).get("_wire")
    if not isinstance(spec, _Spec):
        raise TypeError(f"{cls.__name__} is not declared with @message")
    return spec


# --- the messages -------------------------------------------------------------------------------


@message(MessageType.TICK)
class Tick:
    """Published by the Scheduler. ``seq`` counts whole intervals since the run's start ``t0``; a
    run is identified by ``(t0, interval)``, so a receiver tells a restarted Scheduler's new run (seq
    from 0 again) from ticks going backwards, and checks a seq against the wall clock."""

    seq: int = wire(uint)
    scheduled_at: float = wire(finite)  # t0 + seq * interval, wall clock seconds
    sent_at: float = wire(finite)
    # seconds; <= 0 would make every seq plausible
    interval: float = wire(checked(finite, lambda s: limits.TICK_MIN <= s <= limits.TICK_MAX,
                                   f"expected {limits.TICK_MIN}..{limits.TICK_MAX:.0f} seconds, got {{value!r:.40}}"))
    t0: float = wire(finite, default=0.0)  # the run's start, wall clock seconds (epoch)


@message(MessageType.LAST_PRICES_REQUEST)
class LastPricesRequest:
    """Ask the DataManager for the last ``count`` competitor prices of ``book`` as of tick ``tick``."""

    request_id: int = wire(uint)
    book: str = wire(text())
    tick: int = wire(uint)
    count: int = wire(checked(integer(1), lambda n: n <= MAX_WINDOW, f"at most {MAX_WINDOW}, got {{value}}"))


# The DataManager's error for every book while its data file cannot be read (missing, bad header): a
# fact about the file, not the book, so a client logs it once, not once per book (issue 21).
DATA_FILE_UNAVAILABLE: Final = "data file unavailable: "


def data_file_unavailable(reason: str) -> str:
    """The error answered for any book while the data file is unusable for ``reason``."""
    return DATA_FILE_UNAVAILABLE + reason


def is_data_file_unavailable(error: str) -> bool:
    """Whether a window's ``error`` is about the whole data file (every book gets it), not its book."""
    return error.startswith(DATA_FILE_UNAVAILABLE)


@message(MessageType.LAST_PRICES_REPLY)
class LastPricesReply:
    """The window of prices, oldest first; ``error`` is empty on success."""

    request_id: int = wire(uint)
    book: str = wire(text())
    tick: int = wire(uint)
    prices: tuple[Decimal, ...] = wire(window)
    error: str = wire(text(500, empty=True), default="")


@message(MessageType.DECISION)
class Decision:
    """One priced book: everything needed to explain the price."""

    ts: float = wire(finite)
    tick: int = wire(uint)
    book: str = wire(text())
    strategy: str = wire(text(limits.STRATEGY_NAME_MAX_LEN))
    prices: tuple[Decimal, ...] = wire(window)
    avg_comp_price: Decimal = wire(mean)  # the window's mean, unrounded (limits.MEAN_DIGITS)
    request_id: int = wire(uint)
    sold: bool = wire(flag)
    price: Decimal = wire(money)  # what was set: the rule's price after the guardrails
    # what the rule said, when the guardrails are configured
    rule_price: Decimal | None = wire(optional_money, default=None)
    # the guardrails that moved the price, in the order applied
    guardrail: tuple[str, ...] = wire(texts(MAX_GUARDRAILS, limits.GUARDRAIL_NAME_MAX_LEN), default=())
    # the Scheduler run's t0 (Tick.t0): with ``tick``, says which tick of which run
    run: float = wire(finite, default=0.0)
    # the rule's factor applied (the strategy's sold or unsold factor): price = rule of the window x factor
    factor: Decimal | None = wire(optional_money, default=None)
    # with guardrails configured: the pair's price the step was measured from (None on its first
    # decision), and the book's floor and ceiling (None where not set), so a line explains its price
    previous_price: Decimal | None = wire(optional_money, default=None)
    floor: Decimal | None = wire(optional_money, default=None)
    ceiling: Decimal | None = wire(optional_money, default=None)


@message(MessageType.WINDOWS_REQUEST)
class WindowsRequest:
    """Ask the DataManager for the last ``count`` prices of many books as of tick ``tick`` at once
    (one request per batch of a tick's books instead of one per book)."""

    request_id: int = wire(uint)
    tick: int = wire(uint)
    count: int = wire(integer(1, MAX_WINDOW))
    books: tuple[str, ...] = wire(texts(limits.BATCH_BOOKS_MAX, MAX_BOOK_ID_LEN, empty=False))

    def _check(self) -> None:
        if not self.books or self.count * len(self.books) > limits.BATCH_PRICES_MAX:
            raise ProtocolError(f"books: 1..{limits.BATCH_BOOKS_MAX} books and at most "
                                f"{limits.BATCH_PRICES_MAX} prices in all, got {len(self.books)} x {self.count}")


@message(MessageType.WINDOWS_REPLY)
class WindowsReply:
    """One window per requested book, in the request's order; ``errors[i]`` is empty on success (then
    ``windows[i]`` holds ``count`` prices) or says why book i has no window (then it is empty)."""

    request_id: int = wire(uint)
    tick: int = wire(uint)
    windows: tuple[tuple[Decimal, ...], ...] = wire(items(window, "windows", limits.BATCH_BOOKS_MAX))
    errors: tuple[str, ...] = wire(texts(limits.BATCH_BOOKS_MAX, 500))

    def _check(self) -> None:
        if len(self.errors) != len(self.windows):
            raise ProtocolError(f"errors: {len(self.errors)} entries for {len(self.windows)} windows")


@message(MessageType.LEDGER_BATCH)
class LedgerBatch:
    """Decisions for the Ledger to keep (an Algorithm's DEALER to the Ledger's ROUTER), at most
    ``limits.LEDGER_BATCH_MAX``; the Ledger answers with a :class:`LedgerAck` of the same ``batch_id``."""

    batch_id: int = wire(uint)
    decisions: tuple[Decision, ...] = wire(items(nested(Decision), "decisions", limits.LEDGER_BATCH_MAX,
                                                 min_items=1, item="decision"))


@message(MessageType.LEDGER_ACK)
class LedgerAck:
    """The Ledger's answer to a batch. ``error`` empty: the batch is committed (``stored`` new,
    ``duplicates`` already kept, ``rejected`` invalid and never to be sent again). ``error`` set: nothing
    of it was committed; send it again later."""

    batch_id: int = wire(uint)
    stored: int = wire(uint)
    duplicates: int = wire(uint)
    rejected: int = wire(uint)
    error: str = wire(text(500, empty=True), default="")


def _book_strategy_reader(name: str) -> Callable[[object], tuple[str, str]]:
    read_book, read_strategy = text().reader("book"), text(limits.STRATEGY_NAME_MAX_LEN).reader("strategy")

    def read(value: Any) -> tuple[str, str]:
        if type(value) is not list or len(value) != 2:
            raise ProtocolError(f"{name}: expected [book, strategy]")
        return read_book(value[0]), read_strategy(value[1])
    return read


@message(MessageType.LAST_DECIDED_REQUEST)
class LastDecidedRequest:
    """Ask the Ledger for the last decided price of each (book, strategy) pair, at most
    ``limits.LEDGER_QUERY_MAX`` pairs; an empty request is answered at once (a probe)."""

    request_id: int = wire(uint)
    pairs: tuple[tuple[str, str], ...] = wire(items(Codec(_book_strategy_reader), "pairs", limits.LEDGER_QUERY_MAX,
                                                    item="pair"))


_PAIRED_LISTS: Final = f"prices, ts: two lists of the same length, at most {limits.LEDGER_QUERY_MAX}"
_RUNS_TICKS: Final = "runs, ticks: two lists as long as prices (or both empty: not told)"


@message(MessageType.LAST_DECIDED_REPLY)
class LastDecidedReply:
    """One entry per requested pair, in order: the price (None if the pair has no decision kept), its
    decision time (epoch seconds, 0 if none), and the run (t0) and tick it was decided for (0 and -1
    if none; both tuples empty: not told): a restarted Algorithm does not decide that tick again.
    ``error`` set: no answer (every tuple empty)."""

    request_id: int = wire(uint)
    prices: tuple[Decimal | None, ...] = wire(items(optional_money, "prices", limits.LEDGER_QUERY_MAX, item="price",
                                                    refusal=_PAIRED_LISTS))
    ts: tuple[float, ...] = wire(items(finite, "ts", limits.LEDGER_QUERY_MAX, refusal=_PAIRED_LISTS))
    error: str = wire(text(500, empty=True), default="")
    runs: tuple[float, ...] = wire(items(finite, "runs", limits.LEDGER_QUERY_MAX, item="run", refusal=_RUNS_TICKS),
                                   default=())
    ticks: tuple[int, ...] = wire(items(integer(-1), "ticks", limits.LEDGER_QUERY_MAX, item="tick",
                                        refusal=_RUNS_TICKS), default=())

    def _check(self) -> None:
        if len(self.prices) != len(self.ts):
            raise ProtocolError(_PAIRED_LISTS)
        if len(self.runs) != len(self.ticks) or len(self.runs) not in (0, len(self.prices)):
            raise ProtocolError(_RUNS_TICKS)


QUERY_NAME_MAX_LEN: Final = 32
QUERY_ERROR_MAX_LEN: Final = 500


class QueryStatus(StrEnum):
    """How the Ledger answered a :class:`LedgerQuery`."""

    OK = "ok"  # ``result`` holds the answer
    BUSY = "busy"  # too many reads in flight, or this one ran past its deadline: ask again later
    UNAVAILABLE = "unavailable"  # no database to read (not yet, or not a Ledger's): ``error`` says why
    BAD_QUERY = "bad_query"  # no such read, or its arguments are not what it takes
    TOO_LARGE = "too_large"  # the answer would not fit in one frame


def _plain_list_reader(name: str) -> Callable[[object], tuple[Any, ...]]:
    def read(value: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise ProtocolError(f"{name}: expected a list")
        return tuple(value)
    return read


def _plain_reader(name: str) -> Callable[[object], Any]:
    return lambda value: value  # any msgpack value: the reader of the result checks its shape


def _status_reader(name: str) -> Callable[[object], QueryStatus]:
    def read(value: Any) -> QueryStatus:
        try:
            return QueryStatus(value)
        except ValueError:
            raise ProtocolError(f"{name}: expected one of {', '.join(s.value for s in QueryStatus)}") from None
    return read


@message(MessageType.LEDGER_QUERY)
class LedgerQuery:
    """A read of the Ledger's database (the Dashboard's DEALER to the Ledger's ROUTER): the read named
    ``name`` with ``args`` (plain values), as :mod:`actors.ledger_reads.queries` defines them (it checks
    them). Answered by a :class:`LedgerQueryReply` of the same ``request_id``."""

    request_id: int = wire(uint)
    name: str = wire(text(QUERY_NAME_MAX_LEN))
    args: tuple[Any, ...] = wire(Codec(_plain_list_reader, list))


@message(MessageType.LEDGER_QUERY_REPLY)
class LedgerQueryReply:
    """The Ledger's answer to a :class:`LedgerQuery`: ``status`` OK with its plain ``result`` (rows, or a
    mapping with string keys), or another status with ``error`` saying why (``result`` None)."""

    request_id: int = wire(uint)
    status: QueryStatus = wire(Codec(_status_reader, str))
    result: Any = wire(Codec(_plain_reader), default=None)
    error: str = wire(text(QUERY_ERROR_MAX_LEN, empty=True), default="")

    def _check(self) -> None:
        if (self.status is QueryStatus.OK) != (self.error == ""):
            raise ProtocolError("error: expected empty with status ok, else set")
        if self.status is not QueryStatus.OK and self.result is not None:
            raise ProtocolError("result: expected none with an error")


@message(MessageType.HEARTBEAT)
class Heartbeat:
    """Sent by every actor from its event loop, so a blocked loop misses it; once more with ``seq``
    :data:`FINAL_HEARTBEAT_SEQ` after the actor has stopped, carrying its final counters."""

    actor: str = wire(text(64))
    pid: int = wire(uint)
    seq: int = wire(uint)
    sent_at: float = wire(finite)
    counters: dict[str, int] = wire(counter_map, default_factory=dict)


FINAL_HEARTBEAT_SEQ: Final = 2**62
SUPERVISOR_EVENTS: Final = ("started", "exited", "hung", "stopping", "stopped", "failed")


@message(MessageType.SUPERVISOR_EVENT)
class SupervisorEvent:
    """Published by the launcher (``--events``): a child started, exited, hung, is being stopped or
    stopped, or was given up on ("failed": it kept exiting with a configuration error; the launcher
    then stops). Last of all, "stopped" for the actor "launcher" itself."""

    ts: float = wire(finite)
    # one of SUPERVISOR_EVENTS
    event: str = wire(checked(text(16), lambda e: e in SUPERVISOR_EVENTS, "unknown supervisor event {value!r:.20}"))
    actor: str = wire(text(64))
    pid: int = wire(uint)
    detail: str = wire(text(500, empty=True), default="")  # for people: what happened, in words
    # exited, stopped, failed: the exit code, or minus the signal that killed it
    exitcode: int = wire(integer(-255, 255), default=0)
    # exited: seconds until the restart
    restart_in: float = wire(checked(finite, lambda s: s >= 0, "expected a number >= 0, got {value!r:.40}"),
                             default=0.0)


@message(MessageType.ACTOR_STATUS)
class ActorStatus:
    """Published by the launcher (``--events``) for each supervised process whenever its counters
    arrive and every ``--status-every`` seconds; ``actor`` "launcher" carries the launcher's own
    counters and, in ``rss_kib``/``pss_kib``, the totals over every process. Times are wall clock
    seconds, 0 when unknown (``pid`` 0: not running)."""

    ts: float = wire(finite)
    actor: str = wire(text(64))
    pid: int = wire(uint)
    rss_kib: int = wire(uint)
    pss_kib: int = wire(uint)
    restarts: int = wire(uint)
    hangs: int = wire(uint)
    up_since: float = wire(finite)
    last_beat: float = wire(finite)
    counters: dict[str, int] = wire(counter_map, default_factory=dict)


Message = (Tick | LastPricesRequest | LastPricesReply | Decision | Heartbeat | SupervisorEvent | ActorStatus
           | WindowsRequest | WindowsReply
           | LedgerBatch | LedgerAck | LastDecidedRequest | LastDecidedReply | LedgerQuery | LedgerQueryReply)


def _index(classes: tuple[type, ...]) -> MappingProxyType[int, _Spec[Any]]:
    """The declarations of ``classes`` by type code: exactly one for every code of MessageType."""
    specs: dict[int, _Spec[Any]] = {}
    for cls in classes:
        spec: _Spec[Any] = _spec_of(cls)
        if spec.kind in specs:
            raise TypeError(f"{cls.__name__} and {specs[spec.kind].cls.__name__} are both {spec.kind.name}")
        specs[spec.kind] = spec
    if missing := [kind.name for kind in MessageType if kind not in specs]:
        raise TypeError(f"no class in the Message union declares MessageType {', '.join(missing)}")
    return MappingProxyType(specs)


_SPECS: Final = _index(get_args(Message))
_SPECS_BY_CLASS: Final[Mapping[type, _Spec[Any]]] = MappingProxyType({s.cls: s for s in _SPECS.values()})

_M = TypeVar("_M", bound=Message)
_N = TypeVar("_N", bound=Message)
_O = TypeVar("_O", bound=Message)


# --- the codec ----------------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """Pack one message into a frame."""
    spec = _SPECS_BY_CLASS[type(message)]
    frame: bytes = msgpack.packb([PROTOCOL_VERSION, int(spec.kind), *spec.fields(message)], use_bin_type=True)
    return frame


def _unpack(frame: bytes) -> tuple[_Spec[Any], list[Any]]:
    """What every frame goes through: its size, msgpack, the version and the type; then its fields."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    try:
        raw = msgpack.unpackb(frame, raw=False, strict_map_key=True)  # size checked above
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise ProtocolError(f"not msgpack: {type(exc).__name__}") from None
    if type(raw) is not list or len(raw) < 2:
        raise ProtocolError("not a [version, type, ...] array")
    version, kind, *values = raw
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {version!r:.20} (expected {PROTOCOL_VERSION})")
    if type(kind) is not int:
        raise ProtocolError(f"unknown message type {kind!r:.20} (not an integer)")
    spec = _SPECS.get(kind)
    if spec is None:
        raise ProtocolError(f"unknown message type {kind!r:.20}")
    return spec, values


def _checked_fields(frame: bytes) -> tuple[_Spec[Any], list[Any]]:
    spec, values = _unpack(frame)
    if len(values) != spec.arity:
        raise ProtocolError(f"{spec.kind.name}: expected {spec.arity} fields, got {len(values)}")
    return spec, values


def decode(frame: bytes) -> Message:
    """Unpack and validate one frame; raise :class:`ProtocolError` for anything else."""
    spec, values = _checked_fields(frame)
    message: Message = spec.read(values)
    return message


def unpacked(frame: bytes) -> tuple[MessageType, list[Any]]:
    """A frame's type and its fields as msgpack reads them: the frame's size, version, type and number
    of fields checked as :func:`decode` checks them, the fields' values not. For a reader that checks
    them its own way, faster (:mod:`transport.ledger_rows`); raises :class:`ProtocolError`."""
    spec, values = _checked_fields(frame)
    return spec.kind, values


def field_names(cls: type) -> tuple[str, ...]:
    """The fields of message class ``cls`` in the order they are on the wire."""
    return _spec_of(cls).names


@overload
def decode_as(frame: bytes, kind: type[_M], /) -> _M: ...


@overload
def decode_as(frame: bytes, kind: type[_M], other: type[_N], /) -> _M | _N: ...


@overload
def decode_as(frame: bytes, kind: type[_M], other: type[_N], third: type[_O], /) -> _M | _N | _O: ...


def decode_as(frame: bytes, *kinds: type) -> Message:
    """Decode a frame that must hold a message of one of ``kinds``: anything else is a
    :class:`ProtocolError`."""
    message = decode(frame)
    if not isinstance(message, kinds):
        expected = " or ".join(kind.__name__ for kind in kinds)
        raise ProtocolError(f"unexpected {type(message).__name__} (expected {expected})")
    return message


# --- answering an invalid request -----------------------------------------------------------------


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


# The requests whose invalid frames are answered (the DataManager's).
_REFUSABLE: Final = (MessageType.LAST_PRICES_REQUEST, MessageType.WINDOWS_REQUEST)


def refused_request(frame: bytes) -> RefusedRequest | None:
    """For a frame :func:`decode` refused: the request's id and what else can be echoed, when the frame
    is a request of this protocol version whose ``request_id`` is valid; None otherwise. The fields are
    found and read through the request's declaration, whatever their number."""
    try:
        spec, values = _unpack(frame)
    except ProtocolError:
        return None
    if spec.kind not in _REFUSABLE:
        return None
    request_id = spec.salvage(values, "request_id")
    if request_id is None:
        return None
    tick = spec.salvage(values, "tick")
    # Echo what can be: a book id cut to its limit, the number of books of a list of sane length.
    book, books = spec.raw(values, "book"), spec.raw(values, "books")
    return RefusedRequest(spec.kind, request_id, 0 if tick is None else tick,
                          book[:MAX_BOOK_ID_LEN] if type(book) is str and book else "?",
                          len(books) if type(books) is list and 0 < len(books) <= limits.BATCH_BOOKS_MAX else 0)


# --- a decision kept on its own: the Algorithm's spool ----------------------------------------------
# A worker keeps each decision on its disk before printing it, in the very bytes it later sends to the
# Ledger: the decision's fields packed alone, as they sit inside a LedgerBatch frame. A batch is then
# made of kept records without packing them again, byte for byte the frame ``encode`` makes.


def decision_record(d: Decision) -> bytes:
    """``d``'s fields packed alone, exactly as inside ``encode(LedgerBatch(..., (d, ...)))``."""
    record: bytes = msgpack.packb(_spec_of(Decision).fields(d), use_bin_type=True)
    return record


def decision_from_record(record: bytes) -> Decision:
    """The decision a :func:`decision_record` holds, checked as ``decode`` checks a LedgerBatch's;
    :class:`ProtocolError` for anything else."""
    if len(record) > MAX_FRAME_BYTES:
        raise ProtocolError(f"record of {len(record)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    try:
        values = msgpack.unpackb(record, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise ProtocolError(f"not msgpack: {type(exc).__name__}") from None
    return nested(Decision).reader("decision")(values)


def ledger_batch_frame(batch_id: int, records: Sequence[bytes]) -> bytes:
    """The frame of ``LedgerBatch(batch_id, decisions)`` made of the decisions' :func:`decision_record`:
    equal to what ``encode`` makes of the batch."""
    if not 1 <= len(records) <= limits.LEDGER_BATCH_MAX:
        raise ValueError(f"a batch holds 1..{limits.LEDGER_BATCH_MAX} decisions, got {len(records)}")
    packer = msgpack.Packer(use_bin_type=True)
    head: bytes = (packer.pack_array_header(4) + packer.pack(PROTOCOL_VERSION)
                   + packer.pack(int(MessageType.LEDGER_BATCH)) + packer.pack(batch_id)
                   + packer.pack_array_header(len(records)))
    return head + b"".join(records)
