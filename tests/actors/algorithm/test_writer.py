"""The output writer: whole lines, chunks within PIPE_BUF, never blocking; and a real Algorithm whose
stdout nobody reads is not killed as hung."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.algorithm.writer import PIPE_BUF, OutputWriter, _chunks
from bench.driver import EventFeed
from tests.helpers import REPO, free_port, run_async, wait_for


@given(st.lists(st.binary(max_size=5000).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=60))
def test_chunks_are_whole_lines_within_pipe_buf(lines: list[bytes]) -> None:
    chunks = _chunks(lines)
    assert b"".join(chunks) == b"".join(lines)
    for chunk in chunks:
        assert chunk.endswith(b"\n")
        assert len(chunk) <= PIPE_BUF or chunk.count(b"\n") == 1  # a long line goes alone


def test_an_unread_stdout_never_gets_the_algorithm_killed(ipc_dir: Path) -> None:
    """The launcher's stdout is a pipe nobody reads: it fills within a few seconds; the Algorithm goes
    on (its beats keep coming: no hang kill, no restart) and keeps deciding. (Lines past the buffer are
    dropped and counted: the next test.)"""
    events = f"ipc://{ipc_dir}/events.sock"
    command = [sys.executable, str(REPO / "launcher.py"), "--json", "--run-dir", str(ipc_dir),
               "--api-port", str(free_port()), "--tick", "0.02", "--delay", "0", "--hang-timeout", "2",
               "--status-every", "0.5", "--events-endpoint", events]
    lock = threading.Condition()
    feed = EventFeed(events, lock, None)
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True)

    def counters() -> dict[str, int]:
        with lock:
            status = feed.latest.get("algorithm")
            return dict(status.counters) if status is not None else {}

    try:
        # ~250 lines/s of ~250 bytes: the 64 KiB pipe is full within ~1 s, then lines wait in the buffer
        wait_for(lambda: counters().get("decisions", 0) > 400, timeout=40)
        # Still deciding while nobody reads: 1,100 more decisions take over 4 s (5 books on a 0.02 s
        # tick: at most 250 a second), twice the hang timeout.
        wait_for(lambda: counters().get("decisions", 0) > 1500, timeout=40)
        with lock:
            hung = [e for e in feed.events if e.event in ("hung", "exited")]
            status = feed.latest["algorithm"]
        assert not hung and status.hangs == 0 and status.restarts == 0, hung
    finally:  # SIGKILL to the group: a graceful stop would wait out its grace on the full pipe
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(20)
        feed.close()


@pytest.mark.both_loops
def test_a_full_pipe_never_blocks_the_loop_and_drops_are_counted() -> None:
    """stdout is a pipe nobody reads: writes go on without blocking; past the buffer, lines are
    dropped and counted; once a reader drains the pipe, what was buffered comes out whole."""
    read_end, write_end = os.pipe()
    saved = os.dup(1)
    os.dup2(write_end, 1)  # our stdout is now the pipe (the writer only takes the real stdout's fd)
    os.close(write_end)
    drained = bytearray()
    try:
        async def body() -> OutputWriter:
            assert sys.__stdout__ is not None
            writer = OutputWriter(sys.__stdout__, max_buffer=100_000)
            writer.start()
            line = b"x" * 99 + b"\n"
            started = time.monotonic()
            for _ in range(5000):  # 500 kB: the pipe (64 kB) and the buffer (100 kB) overflow
                writer.write(line)
                await asyncio.sleep(0)
            assert time.monotonic() - started < 5  # never blocked for long
            assert writer.counters["output_dropped"] > 0
            reader.start()  # a consumer comes back: the buffer goes out by itself, in order
            assert await writer.aclose(5)
            return writer

        def read_to_the_end() -> None:
            while chunk := os.read(read_end, 1 << 16):
                drained.extend(chunk)

        reader = threading.Thread(target=read_to_the_end, daemon=True)
        writer = run_async(body())
        os.dup2(saved, 1)  # the last write end closes: the reader sees the end
        reader.join(5)
        lines = bytes(drained).split(b"\n")
        assert lines[-1] == b"" and all(line == b"x" * 99 for line in lines[:-1])  # whole lines only
        assert len(lines) - 1 + writer.counters["output_dropped"] == 5000  # each line printed or counted
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(read_end)
