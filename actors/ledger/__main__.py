"""``python -m actors.ledger``: run the Ledger (``--help`` lists its options), or ``history`` / ``summary``
to read the database (``python -m actors.ledger history --help``)."""

import sys

from actors.ledger.cli import main

sys.exit(main())
