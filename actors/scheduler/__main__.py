"""``python -m actors.scheduler``: run this actor on its own (``--help`` lists its options)."""

import sys

from actors.scheduler.actor import main

sys.exit(main())
