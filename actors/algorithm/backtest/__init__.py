"""Backtest: replay a price file through the live pricing rule and guardrails, offline."""
