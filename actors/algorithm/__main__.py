"""``python -m actors.algorithm``: run this actor on its own (``--help`` lists its options)."""

import sys

from actors.algorithm.actor import main

sys.exit(main())
