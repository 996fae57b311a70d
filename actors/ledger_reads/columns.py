"""The columns each read takes from the Ledger's tables, in the order its rows carry them (the
Dashboard's typed rows are read back in this order)."""

from __future__ import annotations

from typing import Final

PAIR_COLUMNS: Final = ("book, strategy, tick, ts, price, avg_comp_price, sold, guardrail, decisions, guardrail_hits, "
                       "run")
DECISION_COLUMNS: Final = ("book, strategy, tick, ts, prices, avg_comp_price, request_id, sold, price, rule_price, "
                           "guardrail, run")
ALERT_COLUMNS: Final = "alert, book, strategy, since, raised_at, detail, cleared_at, cleared_detail"
