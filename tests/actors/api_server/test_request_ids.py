from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.api_server import request_ids
from actors.api_server.request_ids import MAX_ID, IdAllocator, initial_id, is_sold, parse_id
from actors.api_server.state_file import StateFile


class FakeClock:
    """time.time_ns stand-in: the test moves it."""

    def __init__(self, us: int) -> None:
        self.us = us

    def __call__(self) -> int:
        return self.us * 1000


def test_sequential_from_start() -> None:
    ids = IdAllocator(1000)
    assert [ids.allocate() for _ in range(5)] == [1000, 1001, 1002, 1003, 1004]
    assert ids.next_id == 1005
    assert ids.issued == 5


def test_even_sold_odd_not() -> None:
    assert is_sold(0) and is_sold(2) and is_sold(10**15)
    assert not is_sold(1) and not is_sold(3) and not is_sold(10**15 + 1)


def test_known_window_boundaries() -> None:
    ids = IdAllocator(100, retention=3)
    assert not ids.is_known(100)  # nothing issued yet
    for _ in range(10):  # issues 100..109
        ids.allocate()
    assert not ids.is_known(99)  # before this run
    assert not ids.is_known(106)  # expired: outside the last 3
    assert ids.is_known(107) and ids.is_known(108) and ids.is_known(109)
    assert not ids.is_known(110)  # not issued yet
    assert not ids.is_known(MAX_ID)


def test_window_smaller_than_retention_covers_the_whole_run() -> None:
    ids = IdAllocator(50, retention=1_000_000)
    for _ in range(3):
        ids.allocate()
    assert [ids.is_known(i) for i in range(49, 54)] == [False, True, True, True, False]


def test_state_is_o1() -> None:
    ids = IdAllocator(initial_id(), retention=1000)
    for _ in range(100_000):
        ids.allocate()
    assert not hasattr(ids, "__dict__")  # __slots__ only: nothing can grow on the side
    values = [getattr(ids, slot) for slot in IdAllocator.__slots__]
    assert all(v is None or type(v) is int for v in values), values
    assert ids.issued == 100_000


def test_restart_with_a_fake_clock_starts_above_the_previous_run() -> None:
    clock = FakeClock(1_700_000_000_000_000)
    first = IdAllocator(initial_id(clock))
    issued = [first.allocate() for _ in range(500)]
    clock.us += 1000  # restarted 1 ms later: 500 ids in 1 ms is well under 1M ids/s
    second = IdAllocator(initial_id(clock))
    assert second.allocate() > max(issued)
    assert not second.is_known(issued[-1])  # the old run's ids are unknown to the new one


def test_initial_id_never_below_floor() -> None:
    clock = FakeClock(5_000)
    assert initial_id(clock) == 5_000
    assert initial_id(clock, floor=9_000) == 9_000
    assert initial_id(clock, floor=10) == 5_000


def test_block_reservation_with_a_callback() -> None:
    reserved: list[int] = []
    ids = IdAllocator(1000, block=10, reserve=reserved.append)
    assert reserved == []  # lazily, on the first id
    ids.allocate()
    assert reserved == [1010]
    for _ in range(9):
        ids.allocate()
    assert reserved == [1010]  # 1000..1009 came from the first block
    assert ids.allocate() == 1010
    assert reserved == [1010, 1020]


def test_failed_reservation_hands_out_nothing() -> None:
    def broken(end: int) -> None:
        raise OSError("disk full")

    ids = IdAllocator(1000, block=10, reserve=broken)
    with pytest.raises(OSError):
        ids.allocate()
    assert ids.next_id == 1000 and ids.issued == 0


def test_state_file_survives_a_clock_step_back(tmp_path: Path) -> None:
    path = str(tmp_path / "ids.json")
    state = StateFile(path)
    assert state.load() is None
    clock = FakeClock(1_700_000_000_000_000)
    first = IdAllocator(initial_id(clock, state.load() or 0), block=100, reserve=state.save)
    issued = [first.allocate() for _ in range(250)]  # three blocks
    assert state.load() == clock.us + 300
    assert json.loads((tmp_path / "ids.json").read_text()) == {"next_block_end": clock.us + 300}
    assert os.listdir(tmp_path) == ["ids.json"]  # the temp file was renamed, not left behind

    clock.us -= 3_600_000_000  # the clock steps back an hour
    second = IdAllocator(initial_id(clock, state.load() or 0), block=100, reserve=state.save)
    assert second.allocate() > max(issued)


def test_state_file_corrupt_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    for content in ("not json", "[]", '{"next_block_end": -1}', '{"next_block_end": "5"}', "{}"):
        path.write_text(content)
        with pytest.raises(ValueError):
            StateFile(str(path)).load()


def test_exhausted_id_space() -> None:
    ids = IdAllocator(MAX_ID - 1)
    assert ids.allocate() == MAX_ID - 1
    with pytest.raises(OverflowError):
        ids.allocate()


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.5", "+1", " 1", "1 ", "1e3", "0x10", "²",
                                  "١٢", str(2**63), str(2**64), "9" * 40])
def test_parse_id_rejects(text: str) -> None:
    assert parse_id(text) is None


@given(st.integers(min_value=0, max_value=request_ids.MAX_ID))
def test_parse_id_round_trips(value: int) -> None:
    assert parse_id(str(value)) == value


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=50),
       st.integers(min_value=1, max_value=20), st.integers(min_value=-5, max_value=80))
def test_known_matches_the_definition(start: int, retention: int, n: int, offset: int) -> None:
    ids = IdAllocator(start, retention)
    issued = [ids.allocate() for _ in range(n)]
    probe = start + offset
    assert ids.is_known(probe) == (probe in issued[-retention:])


def test_allocate_many_hands_out_a_consecutive_run() -> None:
    ids = IdAllocator(1000, retention=5)
    assert ids.allocate_many(3) == 1000
    assert ids.allocate() == 1003
    assert ids.allocate_many(4) == 1004
    assert ids.next_id == 1008 and ids.issued == 8
    assert ids.oldest_known == 1003 and ids.is_known(1003) and not ids.is_known(1002)
    with pytest.raises(ValueError):
        ids.allocate_many(0)


def test_allocate_many_reserves_a_block_that_covers_the_batch() -> None:
    reserved: list[int] = []
    ids = IdAllocator(1000, block=10, reserve=reserved.append)
    assert ids.allocate_many(4) == 1000
    assert reserved == [1010]
    assert ids.allocate_many(25) == 1004  # larger than a block: one reservation covers it all
    assert reserved == [1010, 1029]
    assert ids.allocate_many(6) == 1029
    assert reserved == [1010, 1029, 1039]


def test_allocate_many_is_all_or_nothing() -> None:
    def broken(end: int) -> None:
        raise OSError("disk full")

    ids = IdAllocator(1000, block=10, reserve=broken)
    with pytest.raises(OSError):
        ids.allocate_many(5)
    assert ids.next_id == 1000
    full = IdAllocator(MAX_ID - 3)
    with pytest.raises(OverflowError):
        full.allocate_many(4)  # MAX_ID itself is never issued, as with allocate()
    assert full.allocate_many(3) == MAX_ID - 3


@given(st.lists(st.integers(min_value=1, max_value=30), max_size=20), st.integers(min_value=1, max_value=25))
def test_allocate_many_matches_allocate(counts: list[int], block: int) -> None:
    one_by_one = IdAllocator(500, block=block, reserve=lambda end: None)
    batched = IdAllocator(500, block=block, reserve=lambda end: None)
    for count in counts:
        first = batched.allocate_many(count)
        assert [one_by_one.allocate() for _ in range(count)] == list(range(first, first + count))
        assert batched.block_end >= batched.next_id  # every id handed out lies in a reserved block
    assert batched.next_id == one_by_one.next_id
