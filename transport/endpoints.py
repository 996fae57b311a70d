"""Where each actor listens. By default an ``ipc://`` socket in a directory private to the user
(:mod:`transport.private_dir`: other local users cannot connect); every endpoint can be overridden so
an actor can run on another machine (binding a non-loopback address then needs CurveZMQ keys, see
``security``). HTTP (the APIServer, the Dashboard) stays on loopback TCP."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from transport import limits
from transport.logs import printable
from transport.private_dir import DEFAULT_DIR


def ipc_in(directory: str, name: str) -> str:
    return f"ipc://{os.path.join(directory, name)}"


def data_name(index: int) -> str:
    """The socket file of DataManager ``index`` in a directory of endpoints."""
    return f"data-{index}.sock"


# The layout of Endpoints.in_directory, in the default directory: an actor started on its own with
# its defaults meets the others, and a launcher without --run-dir uses the same sockets.
DEFAULT_TICKS: Final = ipc_in(DEFAULT_DIR, "ticks.sock")
DEFAULT_DATA: Final = ipc_in(DEFAULT_DIR, data_name(0))
DEFAULT_HEARTBEAT: Final = ipc_in(DEFAULT_DIR, "heartbeat.sock")
DEFAULT_API_URL: Final = "http://127.0.0.1:8080"
DEFAULT_LEDGER: Final = ipc_in(DEFAULT_DIR, "ledger.sock")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The system's addresses. ``data`` may list several DataManagers (load-balanced by DEALER)."""

    ticks: str = DEFAULT_TICKS
    data: tuple[str, ...] = (DEFAULT_DATA,)
    heartbeat: str = DEFAULT_HEARTBEAT
    api_url: str = DEFAULT_API_URL
    ledger: str = DEFAULT_LEDGER

    @classmethod
    def in_directory(cls, directory: str, api_port: int, data_managers: int = 1) -> Endpoints:
        """ipc:// endpoints inside ``directory``: private to one run, so two runs never collide."""
        return cls(
            ticks=ipc_in(directory, "ticks.sock"),
            data=tuple(ipc_in(directory, data_name(i)) for i in range(data_managers)),
            heartbeat=ipc_in(directory, "heartbeat.sock"),
            api_url=f"http://127.0.0.1:{api_port}",
            ledger=ipc_in(directory, "ledger.sock"),
        )


def numbered(endpoint: str, index: int) -> str:
    """Endpoint ``index`` of several DataManagers given one: the next tcp ports, or ipc sockets beside
    the first (``data-0.sock`` -> ``data-1.sock``; ``dm.sock`` -> ``dm-1.sock``)."""
    if index == 0:
        return endpoint
    if endpoint.startswith("ipc://"):
        root, extension = os.path.splitext(endpoint)
        return f"{root.removesuffix('-0')}-{index}{extension}"
    host, _, port = endpoint.rpartition(":")
    return f"{host}:{int(port) + index}"


def split_list(value: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``: CLI lists are comma separated."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// or http:// on a loopback address. A comma-separated list
    is loopback only if every endpoint in it is."""
    if "," in endpoint:
        parts = split_list(endpoint)
        return bool(parts) and all(is_loopback(part) for part in parts)
    parsed = urlsplit(endpoint)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    try:
        return is_loopback_host(parsed.hostname or "")
    except ValueError:  # a malformed port or address
        return False


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; a host name or ``*`` may be reachable from outside."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def problem(endpoint: str) -> str | None:
    """Why ``endpoint`` cannot connect two processes, or None: it must be ``tcp://HOST:PORT`` with a
    port in 1..65535, or ``ipc://PATH`` short enough for a unix socket."""
    scheme, separator, rest = endpoint.partition("://")
    shown = printable(endpoint)
    if scheme == "ipc" and separator:
        if not rest:
            return f"{shown}: no path"
        if len(rest.encode()) > limits.IPC_PATH_MAX_BYTES:
            return f"{shown}: a unix socket path is at most {limits.IPC_PATH_MAX_BYTES} bytes"
        return None
    if scheme != "tcp" or not separator:
        return f"{shown}: expected tcp://HOST:PORT or ipc://PATH"
    host, colon, port = rest.rpartition(":")
    if not colon or not host:
        return f"{shown}: expected tcp://HOST:PORT"
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        return f"{shown}: the port must be a number in 1..65535"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an ``http(s)://HOST:PORT`` base URL, or None."""
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as exc:
        return f"{printable(url)}: {exc}"
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"{printable(url)}: expected http://HOST:PORT"
    if port == 0:
        return f"{printable(url)}: the port must be in 1..65535"
    return None
