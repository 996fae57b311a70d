"""The launcher's options for the Dashboard: whether it runs, where it listens, and the options its
process gets. Kept here (a light module: no aiohttp) beside the Dashboard's own options, which these
borrow (:func:`actors.options.borrow`): the defaults and help are declared once, in
:class:`~actors.dashboard.options.DashboardOptions`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from actors.dashboard.options import DEFAULT_PORT, DashboardOptions
from actors.kinds import DASHBOARD
from actors.options import borrow, borrowed, option
from transport import endpoints


@dataclass(frozen=True, slots=True)
class DashboardLaunch:
    """``--dashboard``, ``--no-dashboard``, ``--dashboard-host``, ``--dashboard-port``, ``--dashboard-db``:
    the launcher's own names (it has a ``--port``-like option for the APIServer and a ``--db`` for the
    Ledger already)."""

    start: bool = option(False, "start the Dashboard even with a --run list that does not name it",
                         flag="--dashboard")
    off: bool = option(False, "run without the Dashboard (a browser view of prices and health, on by default)",
                       flag="--no-dashboard")
    host: str = borrow(DashboardOptions, "host", flag="--dashboard-host",
                       help="address the Dashboard binds (plain HTTP: a non-loopback one needs --insecure)")
    port: int | None = borrow(DashboardOptions, "port", flag="--dashboard-port", default=None,
                              help=f"the Dashboard's port (default {DEFAULT_PORT}; with --run-dir a free port); 0 = a "
                                   "free port, chosen at start and logged")
    db: str | None = option(None, "the Ledger database the Dashboard reads, read-only (default: the Ledger's --db)",
                            flag="--dashboard-db", metavar="PATH")

    def wanted(self, run: Collection[str]) -> bool:
        """Whether the launcher starts the Dashboard, given the ``--run`` list."""
        return not self.off and (self.start or DASHBOARD.name in run)

    def refusal(self, insecure: bool) -> str | None:
        """Why the launcher must not start the Dashboard as asked (said once at start, not by a child
        crash-looping)."""
        if not endpoints.is_loopback_host(self.host) and not insecure:
            return (f"refusing to serve the Dashboard on {self.host!r} without --insecure: it is plain HTTP with no "
                    "authentication (CurveZMQ keys do not cover it)")
        try:
            borrowed(self, DashboardOptions, port=self.bound_port)
        except ValueError as exc:
            return str(exc)
        return None

    def child_options(self, events_endpoint: str | None, ledger_db: str, config: str | None) -> DashboardOptions:
        """The Dashboard's options: it reads the launcher's events, and the Ledger's database unless
        ``--dashboard-db`` names another."""
        return borrowed(self, DashboardOptions, events_endpoint=events_endpoint, port=self.bound_port,
                        db=str(Path(self.db or ledger_db).resolve()), config=config)

    @property
    def bound_port(self) -> int:
        """The port the Dashboard binds: as given, else its default (the launcher chooses one first
        for 0, and under --run-dir for none given)."""
        return DEFAULT_PORT if self.port is None else self.port

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.bound_port == 0:
            return f"http://{host}:<any free port: see the dashboard's own log line>/"
        return f"http://{host}:{self.bound_port}/"
