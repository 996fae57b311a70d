"""The one line a resume logs (pure): how many pairs took their last price from the Ledger, from when,
and how many start from the average."""

from __future__ import annotations

import calendar

from actors.algorithm.clients.ledger import resume_line

T = calendar.timegm((2026, 12, 4, 18, 2, 51))


def test_a_resume_says_how_many_pairs_from_which_moment_and_how_many_start_afresh() -> None:
    assert resume_line(25, 23, [T, T + 5, T + 2]) == (
        "resumed 23 of 25 pair(s) from the Ledger: their last prices, decided 2026-12-04 18:02:51 to 18:02:56 UTC; "
        "2 start from the competitor's average (no decision kept)")
    assert resume_line(2, 2, [T, T]) == ("resumed 2 of 2 pair(s) from the Ledger: their last prices, decided at "
                                         "2026-12-04 18:02:51 UTC")
    assert resume_line(2, 2, [T, T + 86_400]).endswith("decided 2026-12-04 18:02:51 to 2026-12-05 18:02:51 UTC")
    assert resume_line(2, 2, [T, T + 1], [T - 60, T - 60]).endswith(
        "decided 2026-12-04 18:02:51 to 18:02:52 UTC by the run started 2026-12-04 18:01:51 UTC")
    assert resume_line(2, 2, [T, T], [T - 60, T - 30]).endswith(
        "by 2 runs started 2026-12-04 18:01:51 to 2026-12-04 18:02:21 UTC")
    assert resume_line(3, 0, []) == ("resume: none of 3 pair(s) has a decision in the Ledger: they start from the "
                                     "competitor's average")
