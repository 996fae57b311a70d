"""Where a decision goes once it is made: the seam between deciding and delivering.

:class:`DecisionSink` is all the pipeline knows of it. Today's sink, :class:`PrintThenKeep`, prints
the decision on stdout (through the non-blocking :class:`OutputWriter`) and hands it to the Ledger
client, which keeps it once the Ledger acknowledges it. Neither step blocks the event loop.
"""

from __future__ import annotations

from typing import Protocol

from actors.algorithm.clients.ledger import LedgerClient
from actors.algorithm.output import format_human, format_json_bytes
from actors.algorithm.writer import OutputWriter
from transport.protocol import Decision


class DecisionSink(Protocol):
    def accept(self, decision: Decision) -> None:
        """Take ``decision``; never blocks (what cannot be delivered is logged and counted)."""


class PrintThenKeep:
    """Print each decision (human or JSON line), then hand it to the Ledger (when there is one)."""

    def __init__(self, writer: OutputWriter, *, json_output: bool, ledger: LedgerClient | None) -> None:
        self._writer = writer
        self._json = json_output
        self._ledger = ledger

    def accept(self, decision: Decision) -> None:
        if self._json:
            self._writer.write(format_json_bytes(decision) + b"\n")
        else:
            self._writer.write((format_human(decision) + "\n").encode())
        if self._ledger is not None:
            self._ledger.submit(decision)  # never blocks; a full outbox is logged and counted
