"""The followed data file's own events: a truncation or rotation is counted every time and logged
rate-limited (a writer truncating in a loop must not flood the log)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from actors.data_manager import chunks
from actors.data_manager.chunks import Block
from actors.data_manager.data_file import DataFile
from tests.helpers import run_async
from transport.logs import RateLimitedLog

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

LOGGER = "datamanager.test"


def counters() -> dict[str, int]:
    return {"truncations": 0, "rotations": 0, "file_errors": 0, "not_regular": 0}


def data_file(path: Path) -> tuple[DataFile, dict[str, int]]:
    """The DataManager's file at ``path`` and the counters it keeps."""
    seen = counters()
    return DataFile(str(path), seen, RateLimitedLog(logging.getLogger(LOGGER))), seen


def test_truncations_and_rotations_are_counted_and_logged_rate_limited(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.csv"
    path.write_text("book_id,price\nA,1.00\n")
    data, seen = data_file(path)

    async def scenario() -> None:
        assert await data.open()
        for _ in range(12):
            assert data.changed(10**6)  # the file is shorter than what was read of it: truncated
        for i in range(12):
            fresh = tmp_path / f"fresh{i}.csv"
            fresh.write_text("book_id,price\nA,2.00\n")
            os.replace(fresh, path)
            assert data.changed(0)  # another inode at the path: rotated (and closed)
            assert await data.open()
        data.close()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run_async(scenario(), timeout=60)
    assert seen == {"truncations": 12, "rotations": 12, "file_errors": 0, "not_regular": 0}
    assert sum("(truncated)" in m for m in caplog.messages) == 5  # RateLimitedLog's burst, per kind
    assert sum("(rotated)" in m for m in caplog.messages) == 5


def test_a_fifo_swapped_in_is_refused_at_once_and_the_real_file_read_when_it_is_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 20: a FIFO at the path used to block the open for ever, and every decision with it."""
    path = tmp_path / "p.csv"
    data, seen = data_file(path)
    os.mkfifo(path)

    async def scenario() -> None:
        assert not await data.open()  # returns: nothing waits for a writer
        path.unlink()
        path.write_text("book_id,price\nA,1.00\n")
        assert await data.open()
        data.close()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run_async(scenario(), timeout=60)
    assert seen["file_errors"] == 1
    assert any("not a regular file (a FIFO)" in m for m in caplog.messages)


def test_a_long_line_being_written_is_searched_once_not_from_its_start_at_every_look(tmp_path: Path) -> None:
    """Issue 20: a 1 GiB line in follow mode was read whole at every look (each 0.5 s), the event loop
    waiting. Each look now goes on from where the last one stopped, and its end is remembered."""
    path = tmp_path / "p.csv"
    path.write_bytes(b"book_id,price\nA,1.00\n")
    start = path.stat().st_size
    data, _ = data_file(path)
    reads: list[int] = []

    async def scenario() -> None:
        assert await data.open()
        real = chunks.pread

        async def counted(fd: int, size: int, offset: int) -> bytes:
            got = await real(fd, size, offset)
            reads.append(len(got))
            return got

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(chunks, "pread", counted)
            for _ in range(3):  # the writer adds 5 MiB between two looks
                with path.open("ab") as f:
                    f.write(b"x" * (5 << 20))
                assert await data.read_frontier(start) == "wait"
            with path.open("ab") as f:
                f.write(b"\nA,2.00\n")
            skipped = await data.read_frontier(start)
            assert isinstance(skipped, Block) and skipped.kind == "long" and skipped.end == start + (15 << 20) + 1
            assert await data.read_frontier(start) == skipped  # remembered: not read again
        data.close()

    run_async(scenario(), timeout=60)
    assert sum(reads) < (15 << 20) + 3 * chunks.SKIP_BYTES  # about once, not 5 + 10 + 15 + 15 MiB


def test_a_fifo_swapped_in_mid_run_is_ignored_and_the_open_file_read_on(tmp_path: Path) -> None:
    """Issue 20: the data file replaced by a FIFO for a while, then put back: the file open stays the
    one read (the last good data), nothing is read again from the start."""
    path = tmp_path / "p.csv"
    path.write_text("book_id,price\nA,1.00\n")
    data, seen = data_file(path)

    async def scenario() -> None:
        assert await data.open()
        fd = data.fd
        aside = tmp_path / "aside.csv"
        os.rename(path, aside)
        os.mkfifo(path)
        assert not data.changed(5) and data.fd == fd  # still reading the file it named
        path.unlink()
        os.rename(aside, path)
        assert not data.changed(5) and data.fd == fd  # back: the same file, no rotation
        data.close()

    run_async(scenario(), timeout=60)
    assert seen == {"truncations": 0, "rotations": 0, "file_errors": 0, "not_regular": 1}
