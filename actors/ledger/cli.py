"""python -m actors.ledger: run the Ledger (the default, or serve), or read what it kept (history,
summary). What each does, and its options: USAGE and HELP below, the module's plain-text --help."""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TextIO
from urllib.parse import quote

from actors.csv_fields import csv_bool
from actors.ledger import schema
from actors.ledger.errors import SchemaError
from actors.ledger.options import DEFAULT_DB
from transport import files
from transport.logs import printable

COMMANDS: Final = ("history", "summary")
FORMATS: Final = ("table", "csv", "json")
# ``run`` and ``dispute`` last: the columns before them keep their places for whoever reads the CSV by
# position.
STORED_COLUMNS: Final = ("ts", "tick", "book", "strategy", "prices", "avg_comp_price", "request_id", "sold",
                         "price", "rule_price", "guardrail", "run")
EXPLAINED_COLUMNS: Final = ("factor", "previous_price", "floor", "ceiling")  # schema version 6 on; after dispute
HISTORY_COLUMNS: Final = (*STORED_COLUMNS, "dispute", *EXPLAINED_COLUMNS)
# A decision's dispute: none (its key holds one decision), "kept" (the one in ``decisions``, the first
# to arrive) or "quarantined" (another decision sent for the same key, kept in ``collisions``).
DISPUTE_KEPT: Final = "kept"
DISPUTE_QUARANTINED: Final = "quarantined"
SUMMARY_COLUMNS: Final = ("book", "strategy", "decisions", "sold_share", "first_price", "last_price", "min_price",
                          "max_price", "first_ts", "last_ts", "disputed")
TABLE_SAMPLE: Final = 1000  # rows a table's column widths are sized to (the rest stream after them)
USAGE: Final = """python -m actors.ledger [serve] [--db PATH] [--ledger-endpoint ENDPOINT] [option ...]
       python -m actors.ledger history --book ID [--strategy S] [--since ISO] [--until ISO]
                                       [--format table|csv|json] [--limit N] [--db PATH]
       python -m actors.ledger summary [--book ID] [--strategy S] [--since ISO] [--until ISO]
                                       [--format table|csv|json] [--db PATH]"""
HELP: Final = """Run the Ledger (serve, the default): it keeps every decision the Algorithm workers send it in a
SQLite database and tells a restarted worker the last price it decided for each of its pairs. Or read
what it kept:

  history   one book's decisions, oldest first, each with what explains its price
  summary   per (book, strategy): decisions, sold share, first/last/min/max price, disputed keys

The readers open the database read-only: they never write, and never block the Ledger's writes.
Times are ISO 8601 (2026-11-25T14:05, 2026-11-25T14:05:00Z; no zone means UTC); --since is
inclusive, --until exclusive. Errors (no database, not a ledger, damaged) print one line and exit 2.
"python -m actors.ledger history --help" lists a command's options."""


class CliError(Exception):
    """A failure to report in one line (exit code 2)."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """ISO 8601 to epoch seconds; no zone means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-25T14:05:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def open_readonly(path: str) -> sqlite3.Connection:
    """The ledger at ``path``, read-only; :class:`CliError` if it is missing, damaged or not a ledger."""
    if not os.path.exists(path):
        raise CliError(f"no ledger database at {path} (is the Ledger running elsewhere? pass --db PATH)")
    try:  # SQLite's read-only open of a FIFO would wait for a writer for ever
        files.regular_or_absent(path)
    except files.NotRegularFile as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=5.0)
    try:
        version = schema.read_version(conn)
    except (sqlite3.Error, SchemaError) as exc:
        conn.close()
        raise CliError(f"{path}: {exc}") from None
    if version < 1:  # every version since 1 has the contract's tables (migrations only add)
        conn.close()
        raise CliError(f"{path}: an empty ledger (schema version {version}): no decision kept yet")
    return conn


@dataclass(frozen=True, slots=True)
class Filter:
    book: str | None
    strategy: str | None
    since: float | None
    until: float | None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for clause, value in (("book = ?", self.book), ("strategy = ?", self.strategy), ("ts >= ?", self.since),
                              ("ts < ?", self.until)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# --- history ---------------------------------------------------------------------------------------


def history_rows(conn: sqlite3.Connection, where: Filter, limit: int | None) -> Iterator[dict[str, Any]]:
    """Decisions matching ``where``, oldest first, streamed (never all in memory). ``run`` is the
    Scheduler run's start (its t0, as an ISO time; None for a decision kept before runs were recorded):
    with ``tick`` it tells apart the decisions of two runs, whose tick numbers both start at 0. A disputed key (two
    decisions sent for it) shows both, the kept one first (``dispute``)."""
    clause, params = where.where()
    columns = ", ".join(STORED_COLUMNS)
    kept = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
    # A database no Ledger of version 6 has opened yet has no such columns: NULL, as in its older rows.
    explained = ", ".join(name if name in kept else f"NULL AS {name}" for name in EXPLAINED_COLUMNS)
    if _has_table(conn, "collisions"):  # schema version 5 on
        disputed = ("EXISTS (SELECT 1 FROM collisions c WHERE c.book = d.book AND c.strategy = d.strategy "
                    "AND c.run = d.run AND c.tick = d.tick)")
        sql = (f"SELECT {columns}, iif({disputed}, '{DISPUTE_KEPT}', NULL) AS dispute, {explained} "
               f"FROM decisions d{clause} "
               f"UNION ALL SELECT {columns}, '{DISPUTE_QUARANTINED}', {explained} FROM collisions{clause} "
               "ORDER BY ts, strategy, run, tick, dispute")
        params = params * 2
    else:
        sql = f"SELECT {columns}, NULL AS dispute, {explained} FROM decisions{clause} ORDER BY ts, strategy, run, tick"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for row in conn.execute(sql, params):
        record = dict(zip(HISTORY_COLUMNS, row, strict=True))
        record["ts"] = iso(record["ts"])
        record["run"] = iso(record["run"]) if record["run"] else None  # 0: kept before runs were recorded
        record["prices"] = json.loads(record["prices"])
        record["sold"] = bool(record["sold"])
        record["guardrail"] = json.loads(record["guardrail"]) if record["guardrail"] else None
        yield record


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):  # as the Dashboard's CSV writes them
        return csv_bool(value)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return printable(value, 80)  # the file may have been written by anyone: no control characters out


# --- summary ---------------------------------------------------------------------------------------


def summary_rows(conn: sqlite3.Connection, where: Filter) -> list[dict[str, Any]]:
    """Per (book, strategy): decisions, sold share, first/last price (by time), min/max price, and how
    many other decisions were sent for keys it holds (``disputed``, in quarantine: see ``history``).

    Scans in SQLite, no float for money: min/max compare integer cents (every stored price has exactly
    two decimals), first/last use SQLite's documented rule that a bare column of a min()/max() query
    comes from the row holding that min/max."""
    clause, params = where.where()
    cents = "CAST(replace(price, '.', '') AS INTEGER)"
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for book, strategy, count, sold, low, high, first_ts, last_ts in conn.execute(
            f"SELECT book, strategy, count(*), sum(sold), min({cents}), max({cents}), min(ts), max(ts) FROM decisions"
            f"{clause} GROUP BY book, strategy ORDER BY book, strategy", params):
        pairs[(book, strategy)] = {
            "book": book, "strategy": strategy, "decisions": count, "sold_share": f"{Decimal(sold) / count:.3f}",
            "min_price": str(Decimal(low).scaleb(-2)), "max_price": str(Decimal(high).scaleb(-2)),
            "first_ts": iso(first_ts), "last_ts": iso(last_ts), "disputed": 0}
    for column, aggregate in (("first_price", "min"), ("last_price", "max")):
        for book, strategy, _ts, price in conn.execute(
                f"SELECT book, strategy, {aggregate}(ts), price FROM decisions{clause} GROUP BY book, strategy",
                params):
            if (book, strategy) in pairs:
                pairs[(book, strategy)][column] = price
    if _has_table(conn, "collisions"):
        for book, strategy, count in conn.execute(
                f"SELECT book, strategy, count(*) FROM collisions{clause} GROUP BY book, strategy", params):
            if (book, strategy) in pairs:
                pairs[(book, strategy)]["disputed"] = count
    return [{name: pair.get(name) for name in SUMMARY_COLUMNS} for pair in pairs.values()]


# --- output ----------------------------------------------------------------------------------------


def write(records: Iterator[dict[str, Any]] | list[dict[str, Any]], columns: Sequence[str], fmt: str,
          out: TextIO) -> int:
    count = 0
    if fmt == "json":
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            count += 1
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow(_cell(record[c]) if record[c] is not None else "" for c in columns)
            count += 1
    else:
        count = _table(iter(records), columns, out)
    return count


def _table(records: Iterator[dict[str, Any]], columns: Sequence[str], out: TextIO) -> int:
    """Columns as wide as their widest cell among the first TABLE_SAMPLE rows (a later, wider cell
    widens its row only: the output streams, never holding all rows)."""
    sample = [[_cell(record[c]) for c in columns] for record in itertools.islice(records, TABLE_SAMPLE)]
    widths = [max([len(c), *(len(row[i]) for row in sample)]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip() + "\n"

    out.write(line(columns))
    for cells in sample:
        out.write(line(cells))
    count = len(sample)
    for record in records:
        out.write(line([_cell(record[c]) for c in columns]))
        count += 1
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actors.ledger", usage=USAGE, description=HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, about in (("history", "one book's decisions, oldest first, each with what explains its price"),
                        ("summary", "per (book, strategy): decisions, sold share, first/last/min/max price, "
                                    "disputed keys")):
        cmd = sub.add_parser(name, prog=f"python -m actors.ledger {name}", help=about, description=about)
        cmd.add_argument("--book", required=name == "history", help="the book's id")
        cmd.add_argument("--strategy", help="only this strategy's decisions")
        cmd.add_argument("--since", type=parse_time, metavar="ISO", help="from this time on (inclusive)")
        cmd.add_argument("--until", type=parse_time, metavar="ISO", help="before this time (exclusive)")
        cmd.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
        cmd.add_argument("--db", default=DEFAULT_DB, metavar="PATH", help=f"the database (default {DEFAULT_DB})")
        if name == "history":
            cmd.add_argument("--limit", type=int, metavar="N", help="at most N decisions")
    return parser


def query(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Run ``history`` or ``summary``; return the exit code."""
    args = _parser().parse_args(argv)
    where = Filter(args.book, args.strategy, args.since, args.until)
    try:
        conn = open_readonly(args.db)
        try:
            if args.command == "history":
                write(history_rows(conn, where, args.limit), HISTORY_COLUMNS, args.format, out)
            else:
                write(summary_rows(conn, where), SUMMARY_COLUMNS, args.format, out)
            out.flush()
        finally:
            conn.close()
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"error: {args.db}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


def serve_help(out: TextIO = sys.stdout) -> None:
    """``--help`` of the module and of ``serve``: the three commands, then the Ledger's options."""
    from actors import runtime  # only the actor needs ZeroMQ
    from actors.kinds import LEDGER
    from actors.ledger.options import LedgerOptions

    parser = runtime.build_parser(LEDGER, LedgerOptions, HELP)
    parser.usage = USAGE
    parser.print_help(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return query(args)
    serve = args[1:] if args and args[0] == "serve" else args
    if "-h" in serve or "--help" in serve:
        serve_help()
        return 0
    from actors.ledger import actor  # only the actor needs ZeroMQ

    return actor.main(serve)
