"""The Ledger's answers to reads (actors/ledger/reads.py), in process: every bound holds (reads in
flight, a deadline, one frame per answer), a malformed read is answered ``bad_query`` with one line and
a counter, a missing database is ``unavailable``; and the named reads' arguments are checked before
anything runs (pure)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.ledger import files
from actors.ledger.reads import ReadServer, opening_guard
from actors.ledger_reads import queries
from bench import fake_ledger
from tests.helpers import async_wait_for, run_async
from transport import limits, protocol
from transport.protocol import LedgerQuery, LedgerQueryReply, ProtocolError, QueryStatus

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reads") / "ledger.sqlite3"
    fake_ledger.fill(path, books=3, strategies=("default",), ticks=4, seed=1)
    return path


class Replies:
    """What the server sends, decoded (a frame that does not decode fails the test)."""

    def __init__(self) -> None:
        self.got: list[LedgerQueryReply] = []

    def send(self, identity: bytes, frame: bytes) -> None:
        assert identity == b"peer"
        self.got.append(protocol.decode_as(frame, LedgerQueryReply))

    def of(self, request_id: int) -> LedgerQueryReply:
        return next(r for r in self.got if r.request_id == request_id)


def serve(db: Path, scenario: Callable[[ReadServer, Replies], Any], **bounds: Any) -> None:
    replies = Replies()

    async def run() -> None:
        server = ReadServer(db, replies.send, **bounds)
        try:
            await scenario(server, replies)
        finally:
            await server.stop()

    run_async(run())


def test_a_read_is_answered_with_the_rows_the_query_reads(db: Path) -> None:
    async def scenario(server: ReadServer, replies: Replies) -> None:
        server.submit(b"peer", LedgerQuery(1, "decisions", ("B000001", "default", None, 3)))
        server.submit(b"peer", LedgerQuery(2, "summary", ()))
        await async_wait_for(lambda: len(replies.got) == 2, 10)
        with sqlite3.connect(db) as conn:
            expected = [list(r) for r in conn.execute(queries.decisions_sql(False), ("B000001", "default", 3))]
        assert len(expected) == 3 and replies.of(1) == LedgerQueryReply(1, QueryStatus.OK, expected)
        assert replies.of(2).status is QueryStatus.OK and replies.of(2).result[0] >= 1  # the schema version
        assert server.counters["reads"] == server.counters["reads_answered"] == 2

    serve(db, scenario)


@pytest.mark.parametrize(("name", "args", "reason"), [
    ("drop_table", (), "no query named 'drop_table'"),
    ("decisions", ("B000001", "default", None), "decisions: expected 4 arguments"),
    ("decisions", ("B000001", "default", None, queries.MAX_ROWS + 1), "limit: expected an integer within 1..1000"),
    ("decisions", ("B000001", "default", [1.0, "x", 2], 5), "before.run: expected a finite number"),
    ("books", ("", "price; DROP", False, 0, 50, "all", None, 0), "sort: expected one of"),
    ("pairs_of", ("",), "book: expected a string of 1..128 characters"),
    ("pair_alerts", ([["B1"]],), "pair: expected 2 arguments"),
])
def test_a_malformed_read_is_answered_bad_query_with_one_line_and_a_counter(
        db: Path, caplog: pytest.LogCaptureFixture, name: str, args: tuple[Any, ...], reason: str) -> None:
    async def scenario(server: ReadServer, replies: Replies) -> None:
        with caplog.at_level(logging.WARNING, "ledger"):
            server.submit(b"peer", LedgerQuery(7, name, args))
        assert replies.got[0].status is QueryStatus.BAD_QUERY and reason in replies.got[0].error  # at once
        assert server.counters["reads_refused"] == 1 and server.inflight == 0
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and lines[0].startswith(f"refused a read {name}: ") and reason in lines[0]

    serve(db, scenario)


def test_reads_past_the_bound_in_flight_are_answered_busy_at_once_and_counted(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    prepare = queries.prepare

    def held(name: str, args: Any) -> queries.Work:
        if name != "hold":
            return prepare(name, args)
        return lambda conn: release.wait(10) and [1]

    monkeypatch.setattr(queries, "prepare", held)

    async def scenario(server: ReadServer, replies: Replies) -> None:
        for request_id in (1, 2):  # one runs on the one read thread, one waits for it: 2 in flight
            server.submit(b"peer", LedgerQuery(request_id, "hold", ()))
        server.submit(b"peer", LedgerQuery(3, "summary", ()))
        assert [(r.request_id, r.status) for r in replies.got] == [(3, QueryStatus.BUSY)]  # at once
        assert "2 reads in flight" in replies.got[0].error and server.counters["reads_busy"] == 1
        release.set()
        # a read's task sends its reply, then leaves the set in flight (a done callback, one loop step later)
        await async_wait_for(lambda: len(replies.got) == 3 and server.inflight == 0, 10)
        assert replies.of(1).result == replies.of(2).result == [1]
        server.submit(b"peer", LedgerQuery(4, "summary", ()))  # room again
        await async_wait_for(lambda: len(replies.got) == 4, 10)
        assert replies.of(4).status is QueryStatus.OK

    serve(db, scenario, threads=1, max_inflight=2)


def test_a_read_past_its_deadline_is_interrupted_and_answered_busy(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "prepare", lambda name, args: lambda conn: conn.execute(ENDLESS).fetchone())

    async def scenario(server: ReadServer, replies: Replies) -> None:
        server.submit(b"peer", LedgerQuery(1, "endless", ()))
        await async_wait_for(lambda: replies.got, 10)
        assert replies.got[0].status is QueryStatus.BUSY and "took longer than" in replies.got[0].error
        assert server.counters["reads_busy"] == 1

    serve(db, scenario, query_timeout=0.05)


def test_an_answer_over_one_frame_is_refused_too_large(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "prepare", lambda name, args: lambda conn: ["x" * limits.FRAME_MAX_BYTES])

    async def scenario(server: ReadServer, replies: Replies) -> None:
        server.submit(b"peer", LedgerQuery(1, "huge", ()))
        await async_wait_for(lambda: replies.got, 10)
        assert replies.got[0].status is QueryStatus.TOO_LARGE and server.counters["reads_too_large"] == 1

    serve(db, scenario)


def test_no_database_is_answered_unavailable_with_the_reason(tmp_path: Path) -> None:
    async def scenario(server: ReadServer, replies: Replies) -> None:
        server.submit(b"peer", LedgerQuery(1, "summary", ()))
        await async_wait_for(lambda: replies.got, 10)
        assert replies.got[0].status is QueryStatus.UNAVAILABLE and "no Ledger database at" in replies.got[0].error
        assert server.counters["reads_unavailable"] == 1

    serve(tmp_path / "none.sqlite3", scenario)


def test_no_read_connection_opens_on_a_file_put_where_the_writers_was(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    fake_ledger.fill(path, books=1, strategies=("default",), ticks=2, seed=1)
    writers = files.snapshot(str(path))  # the files the writer opened
    opened: list[files.Snapshot | None] = [writers]
    may_open = opening_guard(str(path), lambda: opened[0])
    assert may_open() is None
    replacement = tmp_path / "other.sqlite3"
    fake_ledger.fill(replacement, books=2, strategies=("default",), ticks=2, seed=2)
    replacement.replace(path)  # another file at the path: the writer has not seen it yet

    async def scenario(server: ReadServer, replies: Replies) -> None:
        server.submit(b"peer", LedgerQuery(1, "summary", ()))
        await async_wait_for(lambda: replies.got, 10)
        assert replies.got[0].status is QueryStatus.UNAVAILABLE and "recovering" in replies.got[0].error
        assert server.counters["reads_unavailable"] == 1
        opened[0] = files.snapshot(str(path))  # the writer recovered: it has the file at the path open now
        server.submit(b"peer", LedgerQuery(2, "summary", ()))
        await async_wait_for(lambda: len(replies.got) == 2, 10)
        assert replies.of(2).status is QueryStatus.OK

    serve(path, scenario, may_open=may_open)
    opened[0] = None  # closed (starting, or recovering): no read opens either
    assert "no database open" in (may_open() or "")


@pytest.mark.parametrize("message", [
    LedgerQuery(1, "books", ("", "book", False, 0, 50, "all", [1.5, 3, 0], 2000)),
    LedgerQueryReply(2, QueryStatus.OK, {"rows": [["B1", 1, 2.5, None, True]], "total": 1}),
    LedgerQueryReply(3, QueryStatus.BUSY, None, "8 reads in flight"),
])
def test_the_read_messages_cross_the_wire_unchanged(message: LedgerQuery | LedgerQueryReply) -> None:
    assert protocol.decode(protocol.encode(message)) == message


@pytest.mark.parametrize(("fields", "reason"), [
    ([protocol.MessageType.LEDGER_QUERY_REPLY, 1, "maybe", None, ""], "status: expected one of ok, busy"),
    ([protocol.MessageType.LEDGER_QUERY_REPLY, 1, "ok", [1], "but an error"], "error: expected empty with status ok"),
    ([protocol.MessageType.LEDGER_QUERY_REPLY, 1, "busy", [1], "busy"], "result: expected none with an error"),
    ([protocol.MessageType.LEDGER_QUERY, 1, "x" * 33, []], "name: expected a string of 1..32"),
    ([protocol.MessageType.LEDGER_QUERY, 1, "summary", {}], "args: expected a list"),
])
def test_a_malformed_read_message_is_refused_with_the_reason(fields: list[Any], reason: str) -> None:
    import msgpack
    with pytest.raises(ProtocolError, match=reason.replace(".", r"\.")):
        protocol.decode(msgpack.packb([protocol.PROTOCOL_VERSION, *fields]))
