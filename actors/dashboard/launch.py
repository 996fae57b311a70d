"""What the launcher needs to start the Dashboard: its options, whether it runs, its events endpoint and
its URL. Kept here (a light module: no aiohttp) so ``launcher.py`` gains a few calls, not a section."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from actors.dashboard.options import DashboardOptions
from actors.kinds import DASHBOARD
from actors.options import default_of
from transport import endpoints


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dashboard")
    group.add_argument("--dashboard", action="store_true",
                       help="start the Dashboard even with a --run list that does not name it")
    group.add_argument("--no-dashboard", action="store_true",
                       help="run without the Dashboard (a browser view of prices and health, on by default)")
    # Own dest names: the launcher already has a "port" (the APIServer's) and the Ledger a "db".
    group.add_argument("--dashboard-host", default=default_of(DashboardOptions, "host"), metavar="HOST",
                       help="address the Dashboard binds (plain HTTP: a non-loopback one needs --insecure; "
                            "default %(default)s)")
    group.add_argument("--dashboard-port", type=int, default=default_of(DashboardOptions, "port"), metavar="PORT",
                       help="the Dashboard's port (default %(default)s)")
    group.add_argument("--dashboard-db", default=None, metavar="PATH",
                       help="the Ledger database the Dashboard reads, read-only (default: the Ledger's --db)")


def wanted(args: argparse.Namespace) -> bool:
    return not args.no_dashboard and (bool(args.dashboard) or DASHBOARD.name in endpoints.split_list(args.run))


def refusal(args: argparse.Namespace) -> str | None:
    """Why the launcher must not start the Dashboard as asked (said once, not by a crash-looping child)."""
    if not wanted(args):
        return None
    if not endpoints.is_loopback_host(args.dashboard_host) and not args.insecure:
        return (f"refusing to serve the Dashboard on {args.dashboard_host!r} without --insecure: it is plain "
                "HTTP with no authentication (CurveZMQ keys do not cover it)")
    try:
        child_options(args)
    except ValueError as exc:
        return str(exc).replace("--port", "--dashboard-port")
    return None


def private_events(args: argparse.Namespace, directory: str) -> None:
    """The Dashboard's live state comes from the launcher's events: without ``--events``, publish them
    on a private ipc endpoint in ``directory``."""
    if wanted(args) and args.events is None:
        args.events = f"ipc://{os.path.join(directory, 'events.sock')}"


def child_options(args: argparse.Namespace) -> DashboardOptions:
    db = args.dashboard_db or args.db  # the Ledger's database, as the launcher resolved it
    return DashboardOptions(host=args.dashboard_host, port=args.dashboard_port, events=args.events,
                            db=str(Path(db).resolve()), config=args.pricing.config)


def url(args: argparse.Namespace) -> str:
    host = f"[{args.dashboard_host}]" if ":" in args.dashboard_host else args.dashboard_host
    if args.dashboard_port == 0:
        return f"http://{host}:<any free port: see the dashboard's own log line>/"
    return f"http://{host}:{args.dashboard_port}/"
