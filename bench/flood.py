"""Flood a DataManager from DEALERs, as fast as ZeroMQ takes the frames, never reading a reply (the
harshest client).

    python -m bench.flood ENDPOINT [--seconds 10] [--books B001,B002] [--ticks 2000]
                                   [--kind mixed|old_ticks|new_books|windows] [--cycle N]

``--kind`` says what is sent: ``mixed`` (requests for known books at any tick, for unknown books,
batches, and garbage), ``old_ticks`` (valid requests for known books at random ticks below
``--ticks``), ``new_books`` (valid requests for a million distinct unknown books), ``windows``
(valid ``WindowsRequest``s of up to 50 known books at random ticks). ``--cycle N`` reconnects with a
new ``ROUTING_ID`` every N frames, so that no per-client budget of the DataManager ever fills.

Prints the number of frames sent. Used by the tests and benchmarks of hostile input.
"""

from __future__ import annotations

import argparse
import errno
import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Final

import zmq

from transport import protocol
from transport.protocol import LastPricesRequest, WindowsRequest

KINDS: Final = ("mixed", "old_ticks", "new_books", "windows")
POOL: Final = 4000
LINGER_MS: Final = 2000  # how long a cycled-out socket may take to deliver what it queued


def frames(books: Sequence[str], ticks: int, seed: int = 1, kind: str = "mixed") -> list[bytes]:
    """A pool of frames of one ``kind`` (see the module's help)."""
    rng = random.Random(seed)
    pool: list[bytes] = []
    for i in range(POOL):
        choice = i % 10 if kind == "mixed" else {"old_ticks": 0, "new_books": 6, "windows": 8}[kind]
        if choice < 6:
            pool.append(protocol.encode(LastPricesRequest(i, rng.choice(books), rng.randrange(ticks), 5)))
        elif choice < 8:
            pool.append(protocol.encode(LastPricesRequest(i, f"FLOOD{rng.randrange(10**6)}", 0, 5)))
        elif choice == 8:
            batch = tuple(rng.choice(books) for _ in range(rng.randint(1, 50)))
            pool.append(protocol.encode(WindowsRequest(i, rng.randrange(ticks), 5, batch)))
        else:
            pool.append(rng.randbytes(rng.randint(0, 64)))
    return pool


def _connect(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, identity: bytes | None) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    sock.connect(endpoint)
    return sock


def _reconnect(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, identity: bytes) -> zmq.Socket[bytes]:
    for _ in range(1000):
        try:
            return _connect(ctx, endpoint, identity)
        except zmq.ZMQError as exc:  # out of descriptors: closed sockets are still being torn down
            if exc.errno != errno.EMFILE:
                raise
            time.sleep(0.001)
    return _connect(ctx, endpoint, identity)


def flood(endpoint: str, seconds: float, books: Sequence[str], ticks: int, kind: str = "mixed",
          cycle: int = 0) -> int:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rng = random.Random(os.getpid())
    sock = _connect(ctx, endpoint, None)
    pool = frames(books, ticks, kind=kind)
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if cycle and sent and sent % cycle == 0:  # a new identity: every per-client budget starts afresh
                sock.close(linger=LINGER_MS)  # its frames are delivered first: each identity's 20 count
                sock = _reconnect(ctx, endpoint, b"\x01" + rng.randbytes(15))
            try:
                sock.send(pool[sent % len(pool)], zmq.NOBLOCK)
                sent += 1
            except zmq.Again:  # our queue to it is full (HWM): wait for room, at full speed otherwise
                sock.poll(10, zmq.POLLOUT)
    finally:
        sock.close(linger=0)
        ctx.term()
    return sent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoint")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--books", default="B001,B002,B003,B004,B005", help="known books to ask for")
    parser.add_argument("--ticks", type=int, default=2000, help="ticks asked are drawn from 0..TICKS-1")
    parser.add_argument("--kind", choices=KINDS, default="mixed", help="what to send (see above)")
    parser.add_argument("--cycle", type=int, default=0, metavar="N",
                        help="reconnect with a new identity every N frames (0: never)")
    args = parser.parse_args(argv)
    print(flood(args.endpoint, args.seconds, [b for b in args.books.split(",") if b], args.ticks, args.kind,
                args.cycle), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
