"""ZeroMQ sockets, configured once: bounded queues (HWM), a size limit on every incoming message
(MAXMSGSIZE), LINGER 0 so nothing hangs at exit, fast reconnects, and the process's security.

Every socket is made by a :class:`Sockets` factory; actors never call ``ctx.socket`` themselves, so
the limits below hold everywhere. The factory is passed to whoever needs sockets (no global state).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any, Final, Generic, TypeVar

import zmq

from transport import private_dir
from transport.endpoints import is_loopback
from transport.limits import FRAME_MAX_BYTES
from transport.logs import printable
from transport.roles import EVENTS, HEARTBEAT, TICKS, Channel
from transport.security import Security, SecurityError

_S = TypeVar("_S", bound="zmq.Socket[Any]")

# High-water marks: a slow or dead peer makes ZeroMQ drop (PUB) or refuse (DEALER, PUSH) instead of
# queueing without bound.
TICK_HWM: Final = 100
REQUEST_HWM: Final = 10_000
HEARTBEAT_HWM: Final = 10
EVENTS_HWM: Final = 1000
# What a peer may send the events XPUB: subscriptions (one byte and a topic; the topics we take are a
# few bytes long) and the handshake (CURVE's largest command is ~300 bytes); more drops the connection.
SUBSCRIPTION_MAX_BYTES: Final = 1024
SUBSCRIPTIONS_HWM: Final = 100  # subscription messages queued per subscriber before ZeroMQ stops reading it


def configure(sock: _S, hwm: int) -> _S:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    # A peer cannot make us allocate more than one frame's worth: a bigger message drops its
    # connection before it is read (without this, a 300 MB frame is buffered whole).
    sock.setsockopt(zmq.MAXMSGSIZE, FRAME_MAX_BYTES)
    # Reconnect quickly to a restarted peer, but back off to a second so a dead one costs nothing.
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    return sock


class Sockets(Generic[_S]):
    """The socket factory of one process: its ZeroMQ context and its :class:`Security`.

    Give it an asyncio context in an actor and a plain one in the launcher; the socket type follows.
    """

    def __init__(self, ctx: zmq.Context[_S], security: Security | None = None) -> None:
        self.ctx = ctx
        self.security = security or Security()

    def _bind(self, sock: _S, endpoint: str, channel: Channel, exclusive: bool = False) -> _S:
        """Bind ``endpoint``; ``exclusive``: an ipc socket another process listens on is refused (EADDRINUSE),
        as a tcp port in use is, instead of being taken over (an actor's own endpoint: a second system
        started with the same defaults must not steal the first one's)."""
        try:
            _claim(endpoint)
            if exclusive and private_dir.in_use(endpoint):
                raise OSError(errno.EADDRINUSE, f"{printable(endpoint)}: already in use (another repricer?)")
            self.security.secure_server(sock, endpoint, is_loopback(endpoint), channel)
            sock.bind(endpoint)
        except (SecurityError, zmq.ZMQError, OSError):
            sock.close(linger=0)
            raise
        return sock

    def _connect(self, sock: _S, endpoints: Sequence[str], channel: Channel) -> _S:
        try:
            for endpoint in endpoints:
                _claim(endpoint)
            self.security.secure_client(sock, channel)
        except SecurityError:
            sock.close(linger=0)
            raise
        for endpoint in endpoints:
            sock.connect(endpoint)
        return sock

    def pub(self, endpoint: str, hwm: int = TICK_HWM, channel: Channel = TICKS) -> _S:
        """The Scheduler's ticks."""
        return self._bind(configure(self.ctx.socket(zmq.PUB), hwm), endpoint, channel, exclusive=True)

    def xpub(self, endpoint: str, hwm: int = EVENTS_HWM) -> _S:
        """A PUB that hears every subscription, so it can greet a new subscriber with the current state
        (what was published before a subscriber joined is otherwise lost). Manual (XPUB_MANUAL): ZeroMQ
        applies no subscription by itself; the owner applies the ones it knows (``subscribe_last``) and
        ignores the rest; subscriptions are small and queued in small numbers. (libzmq still keeps each
        one until its sender leaves: repricer_supervisor.events bounds how many.)"""
        sock = configure(self.ctx.socket(zmq.XPUB), hwm)
        sock.setsockopt(zmq.XPUB_MANUAL, 1)
        sock.setsockopt(zmq.RCVHWM, SUBSCRIPTIONS_HWM)
        sock.setsockopt(zmq.MAXMSGSIZE, SUBSCRIPTION_MAX_BYTES)
        return self._bind(sock, endpoint, EVENTS)

    def sub(self, endpoint: str, hwm: int = TICK_HWM, *, channel: Channel) -> _S:
        """A subscriber to ``channel`` (ticks, or the launcher's events): with keys, its server must hold
        the key of the role that binds that channel."""
        sock = configure(self.ctx.socket(zmq.SUB), hwm)
        # No backoff: what a publisher sends before we are connected is lost for good (no retry, unlike
        # a request). Backing off to a second, an Algorithm started before the Scheduler connected up to
        # a second after it bound, after tick 0 and its repeat: tick 0 was missed in 4 of 16 runs of
        # issue 21's trial. A connect to a publisher not there yet every 100 ms costs next to nothing.
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        return self._connect(sock, [endpoint], channel)

    def router(self, endpoint: str, *, channel: Channel) -> _S:
        """A server of requests (the DataManager's, the Ledger's): with keys, it admits the client roles
        of ``channel``."""
        sock = configure(self.ctx.socket(zmq.ROUTER), REQUEST_HWM)
        # A reply to a peer that has gone away is dropped, not an error.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # A client reconnecting with the identity it had (a Lazy Pirate reopen) takes it over at once,
        # instead of being refused while the old connection is not torn down yet.
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        return self._bind(sock, endpoint, channel, exclusive=True)

    def dealer(self, endpoints: Sequence[str], identity: bytes | None = None, *, channel: Channel) -> _S:
        """A request socket towards one or several ROUTERs (DEALER round-robins over them); ``identity``:
        its routing id (kept across reopens), else one ZeroMQ makes up."""
        sock = configure(self.ctx.socket(zmq.DEALER), REQUEST_HWM)
        if identity is not None:
            sock.setsockopt(zmq.ROUTING_ID, identity)
        # Fail fast (zmq.Again) while no peer is connected, instead of queueing.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        return self._connect(sock, endpoints, channel)

    def pull(self, endpoint: str) -> _S:
        """The supervisor's heartbeat inbox."""
        return self._bind(configure(self.ctx.socket(zmq.PULL), 1000), endpoint, HEARTBEAT)

    def push(self, endpoint: str) -> zmq.Socket[bytes]:
        """The heartbeat sender: always a plain socket (of a shadow of this context), so a NOBLOCK send
        needs no asyncio future and adds no wake-ups of an event loop."""
        plain: zmq.Context[zmq.Socket[bytes]] = zmq.Context.shadow(self.ctx.underlying)
        sock = configure(plain.socket(zmq.PUSH), HEARTBEAT_HWM)
        sock.setsockopt(zmq.IMMEDIATE, 1)  # no queue towards a supervisor that is not there
        try:
            _claim(endpoint)
            self.security.secure_client(sock, HEARTBEAT)
        except SecurityError:
            sock.close(linger=0)
            raise
        sock.connect(endpoint)
        return sock


def _claim(endpoint: str) -> None:
    """A default endpoint's directory is made private before a socket in it is used, by a client too: a
    client that found it missing and waited could connect to a socket another user put there later."""
    try:
        private_dir.claim_default(endpoint)
    except private_dir.NotPrivate as exc:
        raise SecurityError(f"refusing {printable(endpoint)}: {exc.strerror}") from None
