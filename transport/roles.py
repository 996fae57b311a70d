"""Who may talk to whom with per-role CurveZMQ keys (issue 20): the roles that hold a key, the kinds of
bound socket (channels) and the roles each admits, and who may store decisions in the Ledger. Pure:
:mod:`transport.security` applies it (the ZAP handler, the server key a client checks), the Ledger
checks :func:`may_write_ledger` per message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from transport.logs import printable

# The roles that hold a key: the actor kinds (actors.kinds names them the same) and the launcher.
SCHEDULER: Final = "scheduler"
DATA_MANAGER: Final = "datamanager"
API_SERVER: Final = "apiserver"
LEDGER: Final = "ledger"
ALGORITHM: Final = "algorithm"
DASHBOARD: Final = "dashboard"
LAUNCHER: Final = "launcher"
ROLES: Final = (SCHEDULER, DATA_MANAGER, API_SERVER, LEDGER, ALGORITHM, DASHBOARD, LAUNCHER)
LEDGER_WRITERS: Final = frozenset({ALGORITHM})  # who may send the Ledger decisions (LedgerBatch)


@dataclass(frozen=True, slots=True)
class Channel:
    """One kind of bound socket: the role that binds it (whose public key its clients check) and the
    roles of the clients it admits. ``name`` is its ZAP domain."""

    name: str
    server: str
    clients: frozenset[str]


TICKS: Final = Channel("ticks", SCHEDULER, frozenset({ALGORITHM}))
DATA: Final = Channel("data", DATA_MANAGER, frozenset({ALGORITHM}))
LEDGER_CHANNEL: Final = Channel("ledger", LEDGER, frozenset({ALGORITHM, DASHBOARD}))
HEARTBEAT: Final = Channel("heartbeat", LAUNCHER, frozenset(ROLES))
EVENTS: Final = Channel("events", LAUNCHER, frozenset({DASHBOARD}))
CHANNELS: Final = (TICKS, DATA, LEDGER_CHANNEL, HEARTBEAT, EVENTS)


def channel_named(name: str) -> Channel | None:
    return next((channel for channel in CHANNELS if channel.name == name), None)


def refusal(domain: str, role: str | None) -> str | None:
    """Why a client of ``role`` (None: a key nobody authorized) is refused on the socket of ZAP domain
    ``domain``, or None when it is admitted. Pure: the ZAP handler's whole policy."""
    channel = channel_named(domain)
    if channel is None:
        return f"no such socket kind {printable(domain)}"
    if role is None:
        return f"a key not in the authorized folder, on the {channel.name} socket"
    if role not in channel.clients:
        return (f"a key of role {role} on the {channel.name} socket, which admits "
                f"{', '.join(sorted(channel.clients))} only")
    return None


def may_write_ledger(user_id: str | None) -> bool:
    """Whether a message whose ZAP ``User-Id`` (the client's role) is ``user_id`` may store decisions."""
    return user_id in LEDGER_WRITERS


def role_of(key_file: str) -> str | None:
    """The role a public key file of ``authorized/`` names: ``ROLE.key`` or ``ROLE-ANYTHING.key``."""
    stem = key_file.removesuffix(".key")
    role = stem.split("-", 1)[0]
    return role if key_file.endswith(".key") and role in ROLES else None
