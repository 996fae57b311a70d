"""The supervisor's heartbeat inbox: the counters every child sends (PUSH -> PULL), read in bounded
turns. Liveness is not read here (it is a stamp in shared memory, see :mod:`supervisor.children`), so
a message can neither hide a hang nor, flooding, delay the checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

import zmq

from transport.logs import FrameDecoder, RateLimitedLog
from transport.protocol import Heartbeat

# Messages read per turn at most, and for at most this long: a flood of beats or of garbage that is
# slow to decode cannot delay the supervisor's checks.
PER_TURN: Final = 1000
TURN_SECONDS: Final = 0.05


class HeartbeatInbox:
    def __init__(self, sock: zmq.Socket[bytes], on_beat: Callable[[Heartbeat], None], counters: dict[str, int],
                 log: logging.Logger) -> None:
        self.sock = sock
        self._on_beat = on_beat
        # counters are the supervisor's: "bad_heartbeats" counts what is refused here
        self._frames = FrameDecoder(counters, "bad_heartbeats", RateLimitedLog(log), "bad_heartbeat",
                                    "rejected a heartbeat frame")

    def drain(self) -> None:
        """Handle the messages waiting, within the turn's bounds."""
        deadline = time.monotonic() + TURN_SECONDS
        for _ in range(PER_TURN):
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            beat = self._frames.decode_as(frame, Heartbeat)
            if beat is not None:
                self._on_beat(beat)
            if time.monotonic() >= deadline:
                return
