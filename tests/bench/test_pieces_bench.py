"""The batched path's pieces bench measures what it says (its numbers: ``python -m bench.run --only pieces``):
each piece and its bare baseline timed, in CPU microseconds per item."""

from __future__ import annotations

from bench import pieces


def test_every_piece_and_its_bare_baseline_is_timed() -> None:
    for measured, names in ((pieces.rows_parser(200, 1), {"parse_row", "bare"}),
                            (pieces.windows(10, 1), {"decode", "bare"}),
                            (pieces.json_line(100, 1), {"format_json_bytes", "bare"}),
                            (pieces.ledger_reading(400, 1), {"read_batch", "read_batch + watch", "bare"})):
        assert set(measured) == names
        assert all(0 < us < 10_000 for us in measured.values()), measured
