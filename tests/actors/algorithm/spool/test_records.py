"""The spool's bytes, pure: records frame and parse back, a torn or damaged record ends what is read
(wherever the tear is), and a scan recovers each pair's newest decision and the acknowledged mark."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.algorithm.spool.records import (
    MAGIC,
    Kind,
    LastDecision,
    Scan,
    frame,
    parse,
    segment_name,
    segment_number,
)
from tests.actors.ledger.helpers import decision
from transport.protocol import decision_from_record, decision_record


def segment(*records: bytes) -> bytes:
    return MAGIC + b"".join(records)


def test_records_parse_back_in_order_with_their_offsets() -> None:
    ds = [decision(t, f"B{t}") for t in range(5)]
    records = [frame(t + 1, Kind.DECISION, decision_record(d)) for t, d in enumerate(ds)]
    data = b"".join(records)
    parsed = parse(data, base=100)
    assert not parsed.damaged and parsed.end == 100 + len(data)
    assert [r.seq for r in parsed.records] == [1, 2, 3, 4, 5]
    assert [decision_from_record(r.payload) for r in parsed.records] == ds
    assert parsed.records[1].offset == 100 + len(records[0])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_record_torn_anywhere_ends_the_valid_part_just_before_it(data: st.DataObject) -> None:
    records = [frame(seq, Kind.DECISION, decision_record(decision(seq))) for seq in range(1, 4)]
    whole = b"".join(records)
    good = len(records[0]) + len(records[1])
    cut = data.draw(st.integers(good + 1, len(whole) - 1), label="cut")  # the third record torn short
    parsed = parse(whole[:cut])
    assert parsed.damaged and parsed.end == good and [r.seq for r in parsed.records] == [1, 2]
    flip = data.draw(st.integers(good, len(whole) - 1), label="flipped byte")  # or damaged in place
    damaged = bytearray(whole)
    damaged[flip] ^= 0x01
    parsed = parse(bytes(damaged))
    assert parsed.damaged and parsed.end == good


def test_a_length_too_large_to_be_ours_is_damage_not_a_wait_for_more() -> None:
    bad = b"\xff\xff\xff\x7f" + bytes(13)
    parsed = parse(frame(1, Kind.DECISION, b"x") + bad)
    assert parsed.damaged and [r.seq for r in parsed.records] == [1]


def test_segment_names_sort_by_number_and_other_files_are_not_segments() -> None:
    assert segment_name(42) == "000000000042.seg" and segment_number("000000000042.seg") == 42
    assert [segment_number(n) for n in ("lock", "42.seg", "00000000004x.seg", "000000000042.seg.tmp")] == [None] * 4


def test_a_scan_knows_each_pairs_newest_decision_the_acknowledged_mark_and_what_to_deliver_again() -> None:
    first = segment(frame(1, Kind.DECISION, decision_record(decision(7, "B1", run=5.0, price="10.00"))),
                    frame(2, Kind.DECISION, decision_record(decision(8, "B1", run=5.0, price="11.00"))),
                    frame(3, Kind.DECISION, decision_record(decision(8, "B2", run=5.0, price="12.00"))))
    # A later run's tick 0 is newer than the earlier run's tick 8 (ticks restart with every run).
    second = segment(frame(2, Kind.ACKED),
                     frame(4, Kind.DECISION, decision_record(decision(0, "B2", run=9.0, price="13.00"))),
                     frame(5, Kind.DECISION, decision_record(decision(1, "B3", run=9.0, price="14.00"))))
    scan = Scan()
    scan.add_segment(1, first)
    scan.add_segment(2, second)
    assert scan.last == {("B1", "default"): LastDecision(5.0, 8, "11.00"),
                         ("B2", "default"): LastDecision(9.0, 0, "13.00"),
                         ("B3", "default"): LastDecision(9.0, 1, "14.00")}
    assert scan.acked == 2 and scan.last_seq == 5 and scan.unacked == 3  # seqs 3, 4, 5
    assert [(s.first_seq, s.last_seq, s.decisions, s.newest) for s in scan.segments] == [
        (1, 3, 3, (5.0, 8)), (4, 5, 2, (9.0, 1))]
    assert Decimal(scan.last[("B3", "default")].price) == Decimal("14.00")


def test_a_scan_cuts_a_torn_end_and_leaves_a_foreign_file_alone() -> None:
    good = frame(1, Kind.DECISION, decision_record(decision(1)))
    torn = frame(2, Kind.DECISION, decision_record(decision(2)))[:-3]
    scan = Scan()
    cut = scan.add_segment(1, segment(good, torn))
    foreign = scan.add_segment(2, b"someone else's file")
    assert cut.size == len(MAGIC) + len(good) and cut.damaged_bytes == len(torn) and cut.decisions == 1
    assert foreign.foreign and foreign.decisions == 0
    assert scan.last_seq == 1 and scan.unacked == 1


def test_an_unreadable_payload_is_counted_not_trusted() -> None:
    scan = Scan()
    scan.add_segment(1, segment(frame(1, Kind.DECISION, b"\xc1 not msgpack")))
    assert scan.unreadable == 1 and scan.last == {} and scan.last_seq == 1


@pytest.mark.parametrize("seq", [0, 1, 2**63])
def test_frame_takes_any_unsigned_seq(seq: int) -> None:
    assert parse(frame(seq, Kind.ACKED)).records[0].seq == seq
