"""``python -m actors ACTOR [OPTIONS...]``: run one actor, named as in ``--run`` and ``ps``
(scheduler, datamanager, apiserver, ledger, algorithm, dashboard), as ``python -m actors.<package>
[OPTIONS...]`` would. The container image's entry point: one image, the actor as its first argument
(``... algorithm --books-file /etc/repricer/books.txt``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from actors.kinds import BY_NAME, KINDS, LEDGER


def main(argv: Sequence[str]) -> int:
    names = ", ".join(kind.name for kind in KINDS)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m actors ACTOR [OPTIONS...]\n\nACTOR is one of {names}; "
              "python -m actors ACTOR --help lists its options.", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    kind = BY_NAME.get(argv[0])
    if kind is None:
        print(f"error: unknown actor {argv[0][:40]!r}: expected one of {names}", file=sys.stderr)
        return 2
    # The Ledger's command line also reads its database (``ledger history``, ``ledger summary``).
    module = importlib.import_module("actors.ledger.cli" if kind is LEDGER else kind.entry)
    code: int = module.main(list(argv[1:]))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
