"""Which ticks each pair decides, and with which request ids: every tick of the file, or exactly the
decisions of a live run read from its Ledger export (``--ids``). Pure but for reading that file.

An ids file is what ``python -m actors.ledger history --book B --format csv`` (or ``--format json``)
prints: a header naming at least ``book``, ``strategy``, ``tick`` and ``request_id`` (``run`` too if
present); one export per book may be concatenated (a repeated header line is skipped). A file holding
several runs is refused unless ``--ids-run`` picks one: tick numbers restart with every run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from actors.algorithm.backtest.cents import I64
from actors.pricing.config.files import FileRefused, lines
from transport import limits
from transport.logs import printable

IDS_MAX_BYTES: Final = 4 << 30
IDS_ROWS_MAX: Final = 50_000_000  # decisions in one ids file (a 6-hour run of 10,000 books is 43 million)
TICK_MAX: Final = 2**40
REQUIRED: Final = ("book", "strategy", "tick", "request_id")


class IdsError(ValueError):
    """An ids file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class PairIds:
    """One pair's decisions in a live run: its ticks, increasing, and their request ids."""

    ticks: I64
    ids: I64


@dataclass(frozen=True, slots=True)
class IdPlan:
    pairs: dict[tuple[str, str], PairIds]
    run: str | None  # the run the ids are from, if the file names runs
    rows: int


def _records(path: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, fields by column) of every decision in the file, CSV or JSON lines."""
    header: list[str] | None = None
    try:
        for line in lines(Path(path), IDS_MAX_BYTES):
            if line.text is None:
                raise IdsError(f"--ids {printable(path)} line {line.no}: {line.problem}")
            text = line.text.removeprefix("\ufeff").strip()
            if not text:
                continue
            if text.startswith("{"):
                try:
                    record = json.loads(text)
                except ValueError as exc:
                    raise IdsError(f"--ids {printable(path)} line {line.no}: not JSON: {printable(exc, 80)}") from None
                if not isinstance(record, dict):
                    raise IdsError(f"--ids {printable(path)} line {line.no}: expected a JSON object")
                yield line.no, {key: str(value) for key, value in record.items() if value is not None}
                continue
            fields = next(csv.reader([text]), [])
            if header is None or fields == header:
                header = [name.strip().lower() for name in fields]
                continue
            if len(fields) != len(header):
                raise IdsError(f"--ids {printable(path)} line {line.no}: {len(fields)} fields, the header names "
                               f"{len(header)}")
            yield line.no, dict(zip(header, fields, strict=True))
    except FileRefused as exc:
        raise IdsError(f"--ids {printable(path)}: {exc}") from None


def _integer(text: str, low: int, high: int) -> int | None:
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    value = int(text)
    return value if low <= value <= high else None


def read_ids(path: str, run: str | None = None) -> IdPlan:
    """The request ids of each (book, strategy) and tick in ``path``; IdsError for a bad file."""
    found: dict[tuple[str, str], dict[int, int]] = {}
    runs: set[str] = set()
    rows = 0
    for line_no, record in _records(path):
        missing = [name for name in REQUIRED if name not in record]
        if missing:
            raise IdsError(f"--ids {printable(path)} line {line_no}: no {', '.join(missing)} (expected the Ledger's "
                           "history export: book, strategy, tick, request_id)")
        record_run = record.get("run")
        if record_run is not None:
            if run is not None and record_run != run:
                continue
            runs.add(record_run)
            if len(runs) > 1:
                raise IdsError(f"--ids {printable(path)}: decisions of several runs ({', '.join(sorted(runs)[:3])}); "
                               "tick numbers restart with every run: pick one with --ids-run")
        book, strategy = record["book"], record["strategy"]
        tick = _integer(record["tick"], 0, TICK_MAX)
        request_id = _integer(record["request_id"], 0, 2**63 - 1)
        if not limits.is_valid_book_id(book) or tick is None or request_id is None:
            raise IdsError(f"--ids {printable(path)} line {line_no}: not a decision (book {printable(book, 40)}, "
                           f"tick {printable(record['tick'], 20)}, request_id {printable(record['request_id'], 24)})")
        ticks = found.setdefault((book, strategy), {})
        if ticks.get(tick, request_id) != request_id:
            raise IdsError(f"--ids {printable(path)} line {line_no}: book {printable(book, 40)} strategy "
                           f"{printable(strategy, 40)} tick {tick} has two request ids")
        ticks[tick] = request_id
        rows += 1
        if rows > IDS_ROWS_MAX:
            raise IdsError(f"--ids {printable(path)}: more than {IDS_ROWS_MAX} decisions")
    if run is not None and not runs:
        raise IdsError(f"--ids {printable(path)}: no decision of run {printable(run, 40)}")
    pairs = {key: PairIds(np.array(sorted(ticks), dtype=np.int64),
                          np.array([ticks[t] for t in sorted(ticks)], dtype=np.int64)) for key, ticks in found.items()}
    return IdPlan(pairs, next(iter(runs)) if runs else None, rows)
