"""``python -m actors.data_manager``: run this actor on its own (``--help`` lists its options)."""

import sys

from actors.data_manager.actor import main

sys.exit(main())
