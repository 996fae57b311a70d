"""Flood a DataManager from one DEALER, as fast as ZeroMQ takes the frames, never reading a reply (the
harshest client): requests for known books at any tick, for unknown books, batches, and garbage.

    python -m bench.flood ENDPOINT [--seconds 10] [--books B001,B002] [--ticks 2000]

Prints the number of frames sent. Used by the tests and benchmarks of hostile input.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence

import zmq

from transport import protocol
from transport.protocol import LastPricesRequest, WindowsRequest


def frames(books: Sequence[str], ticks: int, seed: int = 1) -> list[bytes]:
    """A varied pool of frames: mostly valid requests (cheap or not), some garbage."""
    rng = random.Random(seed)
    pool: list[bytes] = []
    for i in range(4000):
        kind = i % 10
        if kind < 6:
            pool.append(protocol.encode(LastPricesRequest(i, rng.choice(books), rng.randrange(ticks), 5)))
        elif kind < 8:
            pool.append(protocol.encode(LastPricesRequest(i, f"FLOOD{rng.randrange(10**6)}", 0, 5)))
        elif kind == 8:
            batch = tuple(rng.choice(books) for _ in range(rng.randint(1, 50)))
            pool.append(protocol.encode(WindowsRequest(i, rng.randrange(ticks), 5, batch)))
        else:
            pool.append(rng.randbytes(rng.randint(0, 64)))
    return pool


def flood(endpoint: str, seconds: float, books: Sequence[str], ticks: int) -> int:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    pool = frames(books, ticks)
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
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
    args = parser.parse_args(argv)
    print(flood(args.endpoint, args.seconds, [b for b in args.books.split(",") if b], args.ticks), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
