"""The Dashboard's command-line options (a light module: the launcher imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from actors import paths
from actors.options import option
from actors.pricing.config.backtest import REPORT_DEFAULT

DEFAULT_PORT: Final = 8081
DEFAULT_DB: Final = str(paths.LEDGER_DB)  # the Ledger's default, whatever the working directory
MAX_CLIENTS_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    host: str = option("127.0.0.1", "address to bind (plain HTTP: a non-loopback address needs --insecure)")
    port: int = option(DEFAULT_PORT, "port to bind, 0 = any free port")
    events_endpoint: str | None = option(None, "the launcher's events PUB endpoint (SupervisorEvent, ActorStatus) "
                                         "to subscribe to for live state; without it only history is shown",
                                         metavar="ENDPOINT", deprecated=("--events",))
    db: str = option(DEFAULT_DB, "the Ledger's SQLite database, opened read-only (it may not exist yet); not "
                     "read with --ledger-endpoint", metavar="PATH")
    ledger_endpoint: str | None = option(None, "read the history from the Ledger's socket instead of its file "
                                         "(e.g. tcp://ledger:5558; CurveZMQ with --keys): the Dashboard may run on "
                                         "another machine", metavar="ENDPOINT")
    ledger_timeout: float = option(5.0, "seconds to wait for the Ledger's answer to a read over --ledger-endpoint",
                                   metavar="S")
    config: str | None = option(None, "the repricer's TOML config, read for guardrail floors and ceilings only",
                                metavar="FILE")
    backtest_report: str = option(REPORT_DEFAULT, "the backtest's last HTML report, linked and served at /backtest "
                                  "when it exists (python -m actors.algorithm.backtest writes it)", metavar="PATH")
    history: float = option(600.0, "seconds of decisions/s history kept in memory for the overview chart",
                            metavar="S")
    bucket: float = option(5.0, "seconds per point of the decisions/s chart", metavar="S")
    max_clients: int = option(16, "live (server-sent events) clients at most; more get a 503", metavar="N")

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be within 0..65535")
        if not 0.5 <= self.bucket <= 300:
            raise ValueError("--bucket must be within 0.5..300 seconds")
        if not self.bucket <= self.history <= 86_400 or self.history / self.bucket > 10_000:
            raise ValueError("--history must be within --bucket..86400 seconds and hold at most 10000 buckets")
        if not 1 <= self.max_clients <= MAX_CLIENTS_LIMIT:
            raise ValueError(f"--max-clients must be within 1..{MAX_CLIENTS_LIMIT}")
        if not self.db:
            raise ValueError("--db must name a file")
        if not 0.1 <= self.ledger_timeout <= 60:
            raise ValueError("--ledger-timeout must be within 0.1..60 seconds")
