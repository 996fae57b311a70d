"""What a strategy is, shared by everything that prices or shows prices: the pricing rule
(``rule.py``), the guardrails (``guardrails.py``), strategies and their (book, strategy) pairs
(``strategies.py``) and the TOML config that declares them (``config/``). Pure, but for the config's
file reads. The Algorithm applies it, the backtest replays it, the launcher checks it at start and
the Dashboard shows what it sets (bounds, pauses, each book's strategies): none imports another's
package for it."""
