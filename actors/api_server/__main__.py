"""``python -m actors.api_server``: run this actor on its own (``--help`` lists its options)."""

import sys

from actors.api_server.actor import main

sys.exit(main())
