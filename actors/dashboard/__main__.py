"""``python -m actors.dashboard``: run this actor on its own (``--help`` lists its options)."""

import sys

from actors.dashboard.actor import main

sys.exit(main())
