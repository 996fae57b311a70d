"""The spool over real files: a decision is handed on (printed) only once its write is fsync'd, many
share one write; a restart recovers what was kept (the newest decision of each pair, what the Ledger
never acknowledged) and drops a torn last record; the bound (full: paused, one log line, counters,
then resumed as acknowledged segments go); a failing disk pauses and retries in a new segment; one
process per directory."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from actors.algorithm.spool import spool as spool_module
from actors.algorithm.spool.disk import Disk, SpoolLocked
from actors.algorithm.spool.records import MAGIC, Kind, Scan, parse
from actors.algorithm.spool.spool import Spool
from tests.actors.ledger.helpers import decision
from tests.helpers import async_wait_for, run_async
from transport.protocol import Decision, decision_from_record, decision_record

pytestmark = pytest.mark.both_loops
T = TypeVar("T")


class Printed:
    """What the spool handed on as durable, and what was on disk at that moment."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.decisions: list[Decision] = []
        self.on_disk_when_printed: list[bool] = []
        self.calls = 0

    def __call__(self, decisions: list[Decision]) -> None:
        self.calls += 1
        kept = {(d.book, d.tick) for d in on_disk(self.directory)}
        self.on_disk_when_printed.extend((d.book, d.tick) in kept for d in decisions)
        self.decisions.extend(decisions)


def on_disk(directory: Path) -> list[Decision]:
    found = []
    for path in sorted(directory.glob("*.seg")):
        data = path.read_bytes()
        found += [decision_from_record(r.payload) for r in parse(data, len(MAGIC)).records if r.kind == Kind.DECISION]
    return found


def spool(directory: Path, printed: Callable[[list[Decision]], None], **options: object) -> Spool[Decision]:
    return Spool(directory, max_bytes=options.pop("max_bytes", 1 << 20), on_durable=printed,  # type: ignore[arg-type]
                 **options)  # type: ignore[arg-type]


def keep(s: Spool[Decision], d: Decision) -> None:
    s.append(decision_record(d), d, d.run, d.tick)


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return run_async(body(), timeout=30)


def test_decisions_are_printed_only_once_on_disk_in_order_many_per_write(tmp_path: Path) -> None:
    printed = Printed(tmp_path)
    ds = [decision(t, f"B{t % 50}") for t in range(500)]

    async def body() -> Spool[Decision]:
        s = spool(tmp_path, printed)
        await s.open()
        for d in ds:
            keep(s, d)
        assert printed.decisions == []  # nothing printed before its write
        assert await s.flush(10)
        await s.close()
        return s

    s = run(body)
    assert printed.decisions == ds and all(printed.on_disk_when_printed)
    assert s.counters["spool_committed"] == 500 and s.counters["spool_commits"] <= 10  # group commit
    assert on_disk(tmp_path) == ds


def test_a_restart_recovers_each_pairs_newest_decision_and_delivers_only_the_unacknowledged(tmp_path: Path) -> None:
    ds = [decision(t, f"B{t % 4}", run=50.0) for t in range(40)]

    async def first() -> None:
        s = spool(tmp_path, lambda _: None)
        await s.open()
        for d in ds:
            keep(s, d)
        assert await s.flush(10)
        handed = await s.read(1000)
        assert [seq for seq, _ in handed] == list(range(1, 41))
        s.acknowledged(list(range(1, 26)))  # the Ledger has the first 25
        await s.close()  # writes the acknowledged mark

    async def second() -> tuple[Scan, list[Decision], Spool[Decision]]:
        s = spool(tmp_path, lambda _: None)
        scan = await s.open()
        again = [decision_from_record(record) for _, record in await s.read(1000)]
        await s.close()
        return scan, again, s

    run(first)
    scan, again, s = run(second)
    assert again == ds[25:]  # never a decision the Ledger acknowledged, every one it did not
    assert scan.last[("B3", "default")].tick == 39 and scan.last[("B0", "default")].tick == 36
    assert s.counters["spool_recovered"] == 40 and s.counters["spool_redelivered"] == 15


def test_a_worker_killed_without_closing_delivers_everything_not_marked_acknowledged(tmp_path: Path) -> None:
    """SIGKILL: no clean close, so the newest acknowledged mark may be missing; what follows the last one
    written is delivered again (the Ledger counts it as duplicates), and nothing is lost."""
    ds = [decision(t) for t in range(30)]

    async def killed() -> None:
        s = spool(tmp_path, lambda _: None)
        await s.open()
        for d in ds[:10]:
            keep(s, d)
        await s.flush(10)
        s.acknowledged([seq for seq, _ in await s.read(100)])
        for d in ds[10:]:  # the mark (10) rides with this group
            keep(s, d)
        await s.flush(10)
        s.acknowledged([seq for seq, _ in await s.read(100)])  # acknowledged, never marked: then killed
        s._disk.close()  # the lock goes with the process

    async def restarted() -> list[int]:
        s = spool(tmp_path, lambda _: None)
        await s.open()
        seqs = [seq for seq, _ in await s.read(100)]
        await s.close()
        return seqs

    run(killed)
    assert run(restarted) == list(range(11, 31))


def test_a_torn_last_record_is_dropped_and_the_file_cut_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    ds = [decision(t) for t in range(3)]

    async def write() -> None:
        s = spool(tmp_path, lambda _: None)
        await s.open()
        for d in ds:
            keep(s, d)
        await s.flush(10)
        s._disk.close()

    run(write)
    (path,) = tmp_path.glob("*.seg")
    good = path.stat().st_size
    with path.open("ab") as file:  # power lost in the middle of the next write
        file.write(b"\x80\x00\x00\x00\x12\x34")

    async def reopen() -> tuple[list[int], Spool[Decision]]:
        s = spool(tmp_path, lambda _: None)
        await s.open()
        seqs = [seq for seq, _ in await s.read(100)]
        await s.close()
        return seqs, s

    seqs, s = run(reopen)
    assert seqs == [1, 2, 3] and s.counters["spool_damaged_bytes"] == 6
    assert path.stat().st_size >= good and path.read_bytes()[good:good + 6] != b"\x80\x00\x00\x00\x12\x34"
    assert "torn or damaged record: 6 byte(s) dropped" in caplog.text


def test_the_bound_pauses_logs_once_counts_then_resumes_without_dropping(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    printed = Printed(tmp_path)
    ds = [decision(t, "B1", run=7.0) for t in range(400)]  # ~100 bytes each: ~80 fill 8 KiB

    async def body() -> Spool[Decision]:
        s = spool(tmp_path, printed, max_bytes=8192, segment_bytes=2048)
        await s.open()
        for d in ds:
            keep(s, d)
        await async_wait_for(lambda: s.paused)
        await async_wait_for(lambda: not s._committing)
        assert s.counters["spool_full"] == 1 and s.counters["spool_full_pauses"] == 1
        assert s.counters["spool_bytes"] <= 8192 and len(printed.decisions) < 100  # the rest waits, unprinted
        assert s.counters["spool_waiting"] == 400 - len(printed.decisions)
        # The Ledger acknowledges what it is sent; a newer tick lets old segments go.
        s.know_tick(7.0, 10_000)
        while len(printed.decisions) < 400:
            s.acknowledged([seq for seq, _ in await s.read(1000)])
            await asyncio.sleep(0.01)
        s.acknowledged([seq for seq, _ in await s.read(1000)])
        await async_wait_for(lambda: not s.paused)
        await s.close()
        return s

    s = run(body)
    assert printed.decisions == ds  # every one, once, in order
    assert s.counters["spool_full_pauses"] >= 1 and s.counters["spool_reclaimed"] >= 1
    assert s.counters["spool_paused_ms"] > 0 and s.counters["spool_full"] == 0
    assert caplog.text.count("full (") == s.counters["spool_full_pauses"]
    assert "repricing paused until the Ledger acknowledges decisions" in caplog.text
    assert "has room again: repricing resumes" in caplog.text


def test_segments_of_the_newest_tick_stay_until_a_newer_tick_even_when_acknowledged(tmp_path: Path) -> None:
    """A worker restarted within a tick must know what it decided for it, Ledger or not."""

    async def body() -> list[int]:
        s = spool(tmp_path, lambda _: None, max_bytes=16384, segment_bytes=1024)
        await s.open()
        s.know_tick(7.0, 3)
        for t in range(30):
            keep(s, decision(3, f"B{t}", run=7.0))
            await s.flush(10)  # one group each: several segments
        s.acknowledged([seq for seq, _ in await s.read(1000)])
        await asyncio.sleep(0.05)
        kept = s.counters["spool_segments"]
        s.know_tick(7.0, 4)
        await async_wait_for(lambda: s.counters["spool_segments"] == 1)  # the active one stays
        await s.close()
        return [kept]

    (kept,) = run(body)
    assert kept > 1


class FailingDisk(Disk):
    """A disk full for the first ``failures`` appends."""

    def __init__(self, directory: Path, failures: int) -> None:
        super().__init__(directory)
        self.failures = failures

    def _write(self, fd: int, data: bytes) -> None:
        if self.failures:
            self.failures -= 1
            super()._write(fd, data[:len(data) // 2])  # half written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        super()._write(fd, data)


def test_a_failing_disk_pauses_prints_nothing_then_writes_everything_once_in_a_new_segment(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    printed = Printed(tmp_path)
    ds = [decision(t) for t in range(20)]

    async def body() -> Spool[Decision]:
        s = spool(tmp_path, printed, disk=FailingDisk(tmp_path, failures=2))
        await s.open()
        for d in ds:
            keep(s, d)
        await async_wait_for(lambda: s.counters["spool_errors"] == 1)
        assert s.paused and printed.decisions == []
        assert await s.flush(10)
        assert not s.paused
        await s.close()
        return s

    s = run(body)
    assert printed.decisions == ds and s.counters["spool_errors"] == 2
    assert on_disk(tmp_path) == ds  # the torn halves were cut back: each decision once on disk
    assert "No space left on device" in caplog.text and "repricing paused" in caplog.text


def test_one_process_per_spool_directory(tmp_path: Path) -> None:
    async def body() -> None:
        first = spool(tmp_path, lambda _: None)
        await first.open()
        second = spool(tmp_path, lambda _: None, lock_timeout=0.2)
        with pytest.raises(SpoolLocked, match="used by another process"):
            await second.open()
        await first.close()
        third = spool(tmp_path, lambda _: None, lock_timeout=0.2)
        await third.open()  # free again
        await third.close()

    run(body)


def test_a_read_gives_at_most_what_was_asked_and_the_rest_next_time(tmp_path: Path) -> None:
    async def body() -> list[list[int]]:
        s = spool(tmp_path, lambda _: None)
        await s.open()
        for t in range(50):
            keep(s, decision(t))
        await s.flush(10)  # one group: one read of the file holds all 50
        reads = [[seq for seq, _ in await s.read(n)] for n in (7, 1, 100)]
        await s.close()
        return reads

    assert run(body) == [list(range(1, 8)), [8], list(range(9, 51))]


def test_the_reader_takes_fresh_records_from_memory_and_the_rest_from_the_disk_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records committed while the reader is caught up are handed from memory (at most FRESH_MAX); once
    it lags, from the disk; either way each once, oldest first."""
    monkeypatch.setattr(spool_module, "FRESH_MAX", 5)

    async def body() -> tuple[list[int], int, list[int]]:
        s = spool(tmp_path, lambda _: None)
        await s.open()
        for size in (3, 4, 2):  # 3 from memory; 3 + 4 > 5: these and all after from the disk
            for t in range(size):
                keep(s, decision(t))
            await s.flush(10)
        fresh = len(s._fresh)
        first = [seq for seq, _ in await s.read(2)] + [seq for seq, _ in await s.read(100)]
        s.acknowledged(first[:4])
        await s.close()
        again = spool(tmp_path, lambda _: None)  # a restart: what was not acknowledged, from the disk
        await again.open()
        rest = [seq for seq, _ in await again.read(100)]
        await again.close()
        return first, fresh, rest

    first, fresh, rest = run(body)
    assert (first, fresh, rest) == (list(range(1, 10)), 3, list(range(5, 10)))
