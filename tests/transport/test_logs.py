"""Logging what peers send: rate-limited per kind, control characters escaped."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import FakeClock
from transport import protocol
from transport.logs import FrameDecoder, RateLimitedLog, loop_error_handler, printable
from transport.protocol import Heartbeat, Tick

LOGGER = "tests.logs.ratelimited"

# --- RateLimitedLog ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_rate_limited_log_bursts_then_suppresses_then_reports(clock: FakeClock,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limited = RateLimitedLog(logging.getLogger(LOGGER), clock=clock, burst=3, window=60.0)
    for i in range(10):
        limited.warning("bad frame", "bad frame %d", i)
        clock.now += 1.0
    assert _messages(caplog) == ["bad frame 0", "bad frame 1", "bad frame 2"]
    caplog.clear()
    clock.now = 1000.0 + 60.0  # the window is over: the next one reports the suppressed count
    limited.warning("bad frame", "bad frame %d", 10)
    assert _messages(caplog) == ["bad frame: 7 more suppressed in the last 60s", "bad frame 10"]
    for r in caplog.records:
        assert r.levelno == logging.WARNING


def test_rate_limited_log_counts_each_kind_separately(clock: FakeClock,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limited = RateLimitedLog(logging.getLogger(LOGGER), clock=clock, burst=2, window=60.0)
    for _ in range(5):
        limited.warning("a", "a")
        limited.warning("b", "b")
    assert _messages(caplog) == ["a", "b", "a", "b"]


def test_rate_limited_log_without_excess_reports_nothing(clock: FakeClock,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limited = RateLimitedLog(logging.getLogger(LOGGER), clock=clock, burst=3, window=10.0)
    limited.warning("k", "one")
    clock.now += 10.0
    limited.warning("k", "two")
    assert _messages(caplog) == ["one", "two"]


def test_rate_limited_log_stays_bounded_beyond_the_kinds_limit(clock: FakeClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limited = RateLimitedLog(logging.getLogger(LOGGER), clock=clock, burst=2, window=60.0, kinds=2)
    limited.warning("a", "a")
    limited.warning("b", "b")
    for _ in range(100):
        limited.warning("c", "c")
    assert len(_messages(caplog)) <= 2 + 2


def test_peer_text_cannot_start_a_log_line_of_its_own(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    forged = "/x\n2026-01-01 launcher[1] INFO started algorithm pid=1\r\x1b[2J"
    RateLimitedLog(logging.getLogger(LOGGER)).warning("bad", "bad request for %s", forged)
    (message,) = _messages(caplog)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert message == "bad request for /x\\n2026-01-01 launcher[1] INFO started algorithm pid=1\\r\\x1b[2J"


# --- FrameDecoder --------------------------------------------------------------------------------


def test_frame_decoder_counts_and_logs_what_it_refuses(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    counters = {"bad": 0}
    frames = FrameDecoder(counters, "bad", RateLimitedLog(logging.getLogger(LOGGER)), "bad_tick",
                          "rejected a frame on the tick socket")
    tick = Tick(3, 1.0, 1.5, 1.0, 0.0)
    assert frames.decode_as(protocol.encode(tick), Tick) == tick
    assert counters["bad"] == 0 and _messages(caplog) == []
    assert frames.decode_as(b"\xc1garbage", Tick) is None
    beat = protocol.encode(Heartbeat("scheduler", 1, 0, 1.0, {}))
    assert frames.decode_as(beat, Tick) is None  # a valid message of another kind is refused too
    assert frames.decode_as(beat, Tick, Heartbeat) == Heartbeat("scheduler", 1, 0, 1.0, {})
    assert counters["bad"] == 2
    garbage, other = _messages(caplog)
    assert garbage.startswith("rejected a frame on the tick socket: not msgpack")
    assert other == "rejected a frame on the tick socket: unexpected Heartbeat (expected Tick)"


@given(st.text(max_size=300))
def test_printable_has_no_control_characters_and_is_bounded(text: str) -> None:
    escaped = printable(text, limit=100)
    assert escaped.isprintable()
    assert len(escaped) <= 100 * 6 + 3
    if text.isprintable() and len(text) <= 100:
        assert escaped == text


def test_the_event_loops_errors_are_one_escaped_line_each_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """Every actor's loop gets this handler (issue 20: a peer's errors made 21,491 tracebacks in 25 s)."""
    handle = loop_error_handler(RateLimitedLog(logging.getLogger(LOGGER)))
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(100):
            handle(None, {"message": "Fatal error on transport\nforged", "exception": ValueError("x")})  # type: ignore[arg-type]
    assert caplog.messages == ["event loop: Fatal error on transport\\nforged: ValueError('x')"] * 5
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
