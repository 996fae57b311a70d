import sys

from actors.algorithm.backtest.cli import main

sys.exit(main())
