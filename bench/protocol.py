"""The codec on the hot path: encode and decode time of the messages that carry the most fields.

* cases: a LastPricesReply of 5 prices (the smallest hot message: what a frame costs beyond its
  fields), one Decision (rule price and two guardrails set), a LedgerBatch of 200 decisions
  (``limits.LEDGER_BATCH_MAX``), WindowsReplys of 200 and 1,000 windows of 5 prices (a DataManager's
  answer to a batch of a tick's books).
* value: microseconds per ``encode`` + ``decode`` of ``transport.protocol`` (CPU time of the thread), the
  best of several rounds (the minimum is the round least disturbed by other processes on a shared machine).
* baseline: bare ``msgpack.packb`` + ``unpackb`` of the same frame (no dataclasses, no validation): the
  floor, so the ratio is what the codec's own work costs.
* and the Ledger's fast path: a LedgerBatch of 200 decisions read into the Ledger's rows by
  ``transport.ledger_rows.read_batch``, against ``decode`` + the Ledger's ``records.to_row``.

``python -m bench.protocol --against FILE`` measures another version of ``transport/protocol.py``
(e.g. ``git show main:transport/protocol.py > /tmp/old_protocol.py``) interleaved with the current one,
round by round in one process, and prints the ratios: how a change to the codec is judged.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack

from actors.ledger.records import to_row
from bench.common import Config, Outcome, Row
from transport import ledger_rows, protocol

WINDOW = ("18.02", "17.98", "17.99", "17.94", "17.95")


def cases(p: ModuleType) -> dict[str, Any]:
    """The measured messages, built from the classes of ``p`` (a version of transport/protocol.py)."""
    window = tuple(Decimal(v) for v in WINDOW)

    def decision(i: int) -> Any:
        return p.Decision(1_795_000_000.25 + i, 1000 + i, f"B{i:05d}", "default", window, Decimal("17.976"),
                          1_795_000_000_000_000 + i, i % 2 == 0, Decimal("19.77"), Decimal("19.78"),
                          ("step", "ending"), 1_790_000_000.0)

    def reply(books: int) -> Any:
        return p.WindowsReply(7, 1000, (window,) * books, ("",) * books)

    return {"LastPricesReply of 5 prices": p.LastPricesReply(7, "B00001", 1000, window), "Decision": decision(0),
            "LedgerBatch of 200 decisions": p.LedgerBatch(3, tuple(decision(i) for i in range(200))),
            "WindowsReply of 200 windows": reply(200), "WindowsReply of 1,000 windows": reply(1000)}


def load(path: Path) -> ModuleType:
    """Import a copy of transport/protocol.py from ``path`` under another name."""
    spec = importlib.util.spec_from_file_location("protocol_under_comparison", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _per_call(call: Callable[[], object], number: int) -> float:
    # CPU time of this thread, not wall time: on a machine shared with other work, time spent waiting
    # for a core would count as the codec's.
    started = time.thread_time()
    for _ in range(number):
        call()
    return (time.thread_time() - started) / number


def _bare(raw: object) -> object:
    return msgpack.unpackb(msgpack.packb(raw, use_bin_type=True))


def _calls_per_round(call: Callable[[], object], seconds: float) -> int:
    once = max(_per_call(call, 3), 1e-7)
    return max(3, int(seconds / once))


def timings(codecs: Sequence[ModuleType], rounds: int, seconds: float) -> list[dict[str, dict[str, float]]]:
    """For each codec, each case: the best seconds per encode, per decode, and per bare msgpack round
    trip of the same frame. Codecs take turns within every round, so a busy moment hits them alike."""
    messages = [cases(codec) for codec in codecs]
    best: list[dict[str, dict[str, float]]] = [{name: {} for name in ms} for ms in messages]
    numbers: dict[tuple[int, str, str], int] = {}
    for round_ in range(rounds + 1):  # round 0 warms up (allocator, caches) and is not counted
        for i, codec in enumerate(codecs):
            for name, message in messages[i].items():
                frame: bytes = codec.encode(message)
                assert codec.decode(frame) == message
                raw = msgpack.unpackb(frame)
                ops: dict[str, Callable[[], object]] = {
                    "encode": partial(codec.encode, message), "decode": partial(codec.decode, frame),
                    "msgpack": partial(_bare, raw)}
                for op, call in ops.items():
                    number = numbers.setdefault((i, name, op), _calls_per_round(call, seconds))
                    took = _per_call(call, number)
                    if round_:
                        best[i][name][op] = min(best[i][name].get(op, took), took)
    return best


def _decoded_rows(frame: bytes) -> list[object]:
    return [to_row(d) for d in protocol.decode_as(frame, protocol.LedgerBatch).decisions]


def rows_timings(rounds: int, seconds: float) -> dict[str, float]:
    """The best seconds per LedgerBatch of 200 decisions read into the Ledger's rows: by the fast reader
    (``transport.ledger_rows``) and by the protocol's decoder and ``records.to_row`` (the way every
    other frame goes), in turns within each round."""
    frame = protocol.encode(cases(protocol)["LedgerBatch of 200 decisions"])
    assert ledger_rows.read_batch(frame) is not None
    ops: dict[str, Callable[[], object]] = {"fast": partial(ledger_rows.read_batch, frame),
                                            "decoded": partial(_decoded_rows, frame)}
    numbers = {op: _calls_per_round(call, seconds) for op, call in ops.items()}
    best: dict[str, float] = {}
    for round_ in range(rounds + 1):
        for op, call in ops.items():
            took = _per_call(call, numbers[op])
            if round_:
                best[op] = min(best.get(op, took), took)
    return best


def measure(cfg: Config) -> Outcome:
    rounds, seconds = cfg.pick(3, 7), cfg.pick(0.01, 0.03)
    (best,) = timings([protocol], rounds, seconds)
    rows = rows_timings(rounds, seconds)
    out = Outcome(raw={"seconds": best, "ledger_rows_seconds": rows})
    for name, t in best.items():
        out.rows.append(Row(f"codec encode+decode, {name}", (t["encode"] + t["decode"]) * 1e6, "us",
                            t["msgpack"] * 1e6, "bare msgpack packb+unpackb of the same frame",
                            note=f"encode {t['encode'] * 1e6:.1f} us, decode {t['decode'] * 1e6:.1f} us"))
    out.rows.append(Row("LedgerBatch of 200 decisions read into the Ledger's rows (transport.ledger_rows)",
                        rows["fast"] * 1e6, "us", rows["decoded"] * 1e6, "protocol.decode + records.to_row"))
    return out


def compare(reference: Path, rounds: int, seconds: float) -> str:
    """A markdown table: the current codec against the one in ``reference``, measured in one run."""
    ref, cur = timings([load(reference), protocol], rounds, seconds)
    lines = [f"current transport/protocol.py vs {reference} (best of {rounds} interleaved rounds, us per call)", "",
             "| message | encode ref | encode now | ratio | decode ref | decode now | ratio | both ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for name in cur:
        r, c = ref[name], cur[name]
        both = (c["encode"] + c["decode"]) / (r["encode"] + r["decode"])
        lines.append(f"| {name} | {r['encode'] * 1e6:.1f} | {c['encode'] * 1e6:.1f} | {c['encode'] / r['encode']:.3f}x"
                     f" | {r['decode'] * 1e6:.1f} | {c['decode'] * 1e6:.1f} | {c['decode'] / r['decode']:.3f}x"
                     f" | {both:.3f}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.protocol", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, required=True, metavar="FILE",
                        help="another version of transport/protocol.py to compare with")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.05, help="time of one measurement (default 0.05)")
    args = parser.parse_args(argv)
    print(compare(args.against, args.rounds, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
