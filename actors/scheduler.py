"""The Scheduler: publishes a Tick every ``interval`` seconds on a ZeroMQ PUB socket.

The schedule is absolute -- tick ``seq`` is due at ``t0 + seq * interval`` -- so sleeping late never
accumulates into drift, and a restarted Scheduler given the same ``t0`` continues the sequence: it
skips the ticks it missed instead of replaying them in a burst.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from collections.abc import Sequence

import zmq.asyncio

from actors import runtime
from transport import endpoints, protocol, sockets
from transport.protocol import Tick

log = logging.getLogger("scheduler")


def next_seq(t0: float, interval: float, now: float) -> int:
    """The first tick not yet due at ``now``: ticks already past are skipped, never replayed."""
    if now <= t0:
        return 0
    return math.floor((now - t0) / interval) + 1


class Scheduler:
    name = "scheduler"

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, interval: float, t0: float) -> None:
        self._ctx = ctx
        self.endpoint = endpoint
        self.interval = interval
        self.t0 = t0
        self._counters = {"ticks_sent": 0, "ticks_skipped": 0, "last_seq": 0}

    @property
    def counters(self) -> dict[str, int]:
        return self._counters

    async def run(self, stop: asyncio.Event) -> None:
        sock = sockets.pub(self._ctx, self.endpoint)
        log.info("publishing ticks every %ss on %s (t0=%.3f)", self.interval, self.endpoint, self.t0)
        seq = next_seq(self.t0, self.interval, time.time())
        try:
            while not stop.is_set():
                due = self.t0 + seq * self.interval
                delay = due - time.time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await stop.wait()
                        break
                    except TimeoutError:
                        pass
                now = time.time()
                late_by = next_seq(self.t0, self.interval, now) - 1 - seq
                if late_by > 0:  # the loop was held up past whole intervals (e.g. SIGSTOP): skip them
                    self._counters["ticks_skipped"] += late_by
                    log.warning("skipping %d missed tick(s) after tick %d", late_by, seq)
                    seq += late_by
                tick = Tick(seq, self.t0 + seq * self.interval, now, self.interval)
                await sock.send(protocol.encode(tick))
                self._counters["ticks_sent"] += 1
                self._counters["last_seq"] = seq
                seq += 1
        finally:
            sock.close(linger=0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m actors.scheduler", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", default=endpoints.DEFAULT_TICKS, metavar="ENDPOINT",
                        help="PUB endpoint to bind (default %(default)s)")
    parser.add_argument("--tick", type=float, default=5.0, metavar="S",
                        help="seconds between ticks (default %(default)s)")
    parser.add_argument("--t0", type=float, default=None,
                        help="start of the run, epoch seconds: tick seq counts intervals since t0 "
                             "(default: now; the launcher passes its own so restarts continue the sequence)")
    runtime.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.tick <= 0:
        parser.error("--tick must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = args.t0 if args.t0 is not None else time.time()

    return runtime.run_actor("scheduler", lambda ctx: Scheduler(ctx, args.ticks, args.tick, t0), args)


if __name__ == "__main__":
    sys.exit(main())
