"""Not a measurement: the Ledger's second baseline, a bare ``sqlite3`` ``executemany`` fed through the
same transport (``python -m bench.ledger_bare ENDPOINT DB``).

A plain ROUTER in one thread, on the Ledger's schema and pragmas (WAL, fsync per commit): each
LedgerBatch frame is unpacked with msgpack and its decisions turned into rows with no check at all
(the bench's decisions are valid), written with one ``executemany`` in a transaction of their own,
and acknowledged. A probe (an empty LastDecidedRequest) is answered at once. What it lacks against
the Ledger: the checks, the watch, ``pairs``, the file watch, the event loop and the database thread.
So the Ledger's rate against it measures the Ledger's own work, and its rate against the bare
``executemany`` (``bench/ledger.py``) the transport's hop: the socket, the frame, the round trip.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from operator import itemgetter
from typing import Any

import msgpack
import zmq

from actors.ledger import schema
from actors.ledger.store import INSERT_DECISION
from transport import protocol
from transport.protocol import Decision, LastDecidedReply, LedgerAck, LedgerBatch, MessageType

_DECLARED = protocol.field_names(Decision)
_PICK = itemgetter(*(_DECLARED.index(name) for name in (
    "book", "strategy", "run", "tick", "ts", "prices", "avg_comp_price", "request_id", "sold", "price", "rule_price",
    "guardrail", "factor", "previous_price", "floor", "ceiling")))
_BATCH_ID = protocol.field_names(LedgerBatch).index("batch_id")
_DECISIONS = protocol.field_names(LedgerBatch).index("decisions")


def row(fields: list[Any]) -> tuple[Any, ...]:
    """A decision's wire fields as a ``decisions`` row, unchecked."""
    (book, strategy, run, tick, ts, prices, avg, request_id, sold, price, rule, guardrail, factor, previous, floor,
     ceiling) = _PICK(fields)
    return (book, strategy, run, tick, ts, '["' + '","'.join(prices) + '"]', avg, request_id, int(sold),
            price, rule or None, json.dumps(guardrail) if guardrail else None, factor or None, previous or None,
            floor or None, ceiling or None)


def serve(endpoint: str, db: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    schema.migrate(conn)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    parent = os.getppid()
    try:
        while os.getppid() == parent:  # dies with the bench
            if not sock.poll(1000):
                continue
            identity, frame = sock.recv_multipart()
            values = msgpack.unpackb(frame)
            if values[1] == MessageType.LAST_DECIDED_REQUEST:
                sock.send_multipart([identity, protocol.encode(LastDecidedReply(values[2], (), ()))])
                continue
            batch_id, decisions = values[2 + _BATCH_ID], values[2 + _DECISIONS]
            rows = [row(fields) for fields in decisions]
            conn.execute("BEGIN")
            conn.executemany(INSERT_DECISION, rows)
            conn.execute("COMMIT")
            sock.send_multipart([identity, protocol.encode(LedgerAck(batch_id, len(rows), 0, 0))])
    finally:
        sock.close(0)
        ctx.term()
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
