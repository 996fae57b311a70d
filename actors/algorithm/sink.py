"""Where a decision goes once it is made: the seam between deciding and delivering.

:class:`DecisionSink` is all the pipeline knows of it. Two sinks, neither blocking the event loop:

* :class:`KeepThenPrint` (the default with a Ledger): the decision is appended to the worker's spool
  and printed only once the spool has it on disk, fsync'd (group commit: one write and one fsync for
  all the decisions of a few milliseconds). The Ledger client ships it from the spool. A worker killed
  at any moment has printed nothing it has not kept.
* :class:`PrintThenKeep` (without a Ledger, or ``--no-spool``): printed at once (through the
  non-blocking :class:`OutputWriter`), then, with a Ledger, handed to its client's bounded outbox in
  memory -- a killed worker, or a Ledger down or behind past the outbox, loses those from the Ledger
  (counted ``ledger_dropped``).
"""

from __future__ import annotations

from typing import Protocol

from actors.algorithm.clients.ledger import LedgerClient
from actors.algorithm.output import format_human, format_json_bytes
from actors.algorithm.spool.spool import Spool
from actors.algorithm.writer import OutputWriter
from transport.protocol import Decision, decision_record


class DecisionSink(Protocol):
    def accept(self, decision: Decision) -> None:
        """Take ``decision``; never blocks (what cannot be delivered is logged and counted)."""


class Printer:
    """A decision as one line (human or JSON) to the writer."""

    def __init__(self, writer: OutputWriter, *, json_output: bool) -> None:
        self._writer = writer
        self._json = json_output

    def print(self, decision: Decision) -> None:
        if self._json:
            self._writer.write(format_json_bytes(decision) + b"\n")
        else:
            self._writer.write((format_human(decision) + "\n").encode())

    def print_all(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            self.print(decision)


class PrintThenKeep:
    """Print each decision, then hand it to the Ledger's outbox in memory (when there is a Ledger)."""

    def __init__(self, printer: Printer, ledger: LedgerClient | None) -> None:
        self._printer = printer
        self._ledger = ledger

    def accept(self, decision: Decision) -> None:
        self._printer.print(decision)
        if self._ledger is not None:
            self._ledger.submit(decision)  # never blocks; a full outbox is logged and counted


class KeepThenPrint:
    """Keep each decision in the spool; it is printed by the spool's ``on_durable`` (:meth:`Printer.print_all`)
    once on disk."""

    def __init__(self, spool: Spool[Decision]) -> None:
        self._spool = spool

    def accept(self, decision: Decision) -> None:
        self._spool.append(decision_record(decision), decision, decision.run, decision.tick)
