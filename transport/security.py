"""CurveZMQ authentication and encryption, one key pair per role (issue 20).

A key directory (made by ``python -m transport.security keygen DIR``) holds:

- ``ROLE.key`` / ``ROLE.key_secret`` for each role (:data:`transport.roles.ROLES`: the actor kinds and the
  launcher): a process uses its role's pair for every socket, bound or connected;
- ``authorized/``: the public keys of everyone allowed in, each named for its role (``ROLE.key``, or
  ``ROLE-ANYTHING.key`` to admit another key in that role, e.g. ``algorithm-host2.key``).

A process needs its own role's two files and the ``authorized/`` folder (a machine running only
workers needs ``algorithm.key_secret``, nothing of the Scheduler's): keep the secret files 0600.

Each socket that binds is one :class:`transport.roles.Channel` (its ZAP domain) and admits the roles the channel
names: only the Algorithm's key may subscribe to ticks or ask the DataManager; the Algorithm's and
the Dashboard's may talk to the Ledger, and the Ledger takes decisions (``LedgerBatch``) only from a
writer role (:data:`transport.roles.LEDGER_WRITERS`, checked per message on the ZAP ``User-Id``, the client's role);
each connecting socket checks the server's key of the role that binds its channel, so only the
holder of the Scheduler's secret key can publish ticks to a worker. A refused client is logged and
counted (``curve_refusals``); a server with the wrong key fails the CURVE handshake and gets nothing.
Binding a non-loopback address without keys is refused unless ``--insecure`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
import zmq.auth
from zmq.auth.asyncio import AsyncioAuthenticator
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from transport import files
from transport.logs import RateLimitedLog, printable
from transport.roles import ROLES, Channel, refusal, role_of

log = logging.getLogger(__name__)

class SecurityError(Exception):
    """Keys missing or unreadable, or an insecure bind that was not asked for."""


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys of one process: its role's pair, and every authorized public key by role."""

    role: str
    public: bytes
    secret: bytes
    roles: Mapping[bytes, str]  # a client's public key (z85) -> its role
    servers: Mapping[str, bytes]  # a role -> its public key (z85), from ROLE.key
    authorized: Path

    @classmethod
    def load(cls, directory: str | Path, role: str, authorized: str | Path | None = None) -> Keys:
        """The keys of ``role`` in ``directory``; the authorized public keys in ``authorized`` if given
        (e.g. a second Kubernetes Secret, whose volume cannot hold a subfolder), else in
        ``directory/authorized``."""
        directory = Path(directory)
        allowed = Path(authorized) if authorized is not None else directory / "authorized"
        if role not in ROLES:
            raise SecurityError(f"no such role {printable(role)} (roles: {', '.join(ROLES)})")
        own = directory / f"{role}.key_secret"
        if not own.exists() and (directory / "server.key_secret").exists():
            raise SecurityError(f"{directory} holds keys of the old layout (one server and one client key): make "
                                f"a key per role in a new directory with: python -m transport.security keygen DIR")
        if not own.exists():
            raise SecurityError(f"cannot load the {role} CURVE keys from {directory}: no {own.name} there (make them "
                                f"with: python -m transport.security keygen DIR, and give this machine that file)")
        if not allowed.is_dir():
            raise SecurityError(f"no folder of authorized keys at {allowed}"
                                + (": re-run keygen" if authorized is None else ""))
        roles: dict[bytes, str] = {}
        servers: dict[str, bytes] = {}
        try:
            # zmq.auth opens these with open(): a FIFO would wait for a writer for ever
            for path in (own, *allowed.glob("*.key")):
                files.regular_or_absent(path)
            public, secret = zmq.auth.load_certificate(own)
            for path in sorted(allowed.glob("*.key")):
                if (named := role_of(path.name)) is None:
                    raise SecurityError(f"{path}: an authorized key must be named ROLE.key or ROLE-NAME.key, ROLE one "
                                        f"of {', '.join(ROLES)}")
                key, _ = zmq.auth.load_certificate(path)
                roles[key] = named
                if path.name == f"{named}.key":
                    servers[named] = key
        except (OSError, ValueError) as exc:
            raise SecurityError(f"cannot load the {role} CURVE keys from {directory}: {exc} "
                                f"(make them with: python -m transport.security keygen {directory})") from None
        if secret is None:
            raise SecurityError(f"{own}: no secret key: re-run keygen")
        return cls(role, public, secret, roles, servers, allowed)

    def server_key(self, channel: Channel) -> bytes:
        """The public key a client of ``channel`` expects its server to hold."""
        try:
            return self.servers[channel.server]
        except KeyError:
            raise SecurityError(f"no public key of the {channel.server} ({channel.server}.key) in {self.authorized}: "
                                "copy it there from the key directory") from None


def _tell_verdicts(authenticator: AsyncioAuthenticator | ThreadAuthenticator,
                   on_reply: Callable[[bytes, bytes], None]) -> None:
    """Make ``authenticator`` (the asyncio one of an actor, or the thread one of the launcher, which
    runs no event loop) show ``on_reply`` every verdict it sends: pyzmq logs refusals at debug only."""
    send = authenticator._send_zap_reply

    def told(request_id: Any, status_code: bytes, status_text: bytes, user_id: str = "anonymous") -> None:
        on_reply(status_code, status_text)
        send(request_id, status_code, status_text, user_id)

    authenticator._send_zap_reply = told  # type: ignore[method-assign]


class Security:
    """How this process's sockets are secured: CURVE with ``keys``, or plain (loopback or --insecure)."""

    def __init__(self, keys: Keys | None = None, insecure: bool = False) -> None:
        self.keys = keys
        self.insecure = insecure
        self._authenticator: AsyncioAuthenticator | ThreadAuthenticator | None = None
        self.denied = 0  # clients refused by the ZAP handler (CURVE key not authorized for the socket)
        # pyzmq logs refusals at debug level only: a refused peer must be visible, but a peer retrying
        # must not flood the log either.
        self._refusals = RateLimitedLog(log)

    def _on_zap_reply(self, status_code: bytes, status_text: bytes) -> None:
        if status_code != b"200":
            self.denied += 1
            self._refusals.warning("curve_refused", "refused a CURVE client: %s",
                                   status_text.decode(errors="replace"))

    def start(self, ctx: zmq.Context[Any]) -> None:
        """Start the ZAP handler that checks client keys (once per context, only with keys)."""
        if self.keys is not None and self._authenticator is None:
            if isinstance(ctx, zmq.asyncio.Context):
                self._authenticator = AsyncioAuthenticator(ctx)
            else:
                self._authenticator = ThreadAuthenticator(ctx)
            _tell_verdicts(self._authenticator, self._on_zap_reply)
            _judge_by_role(self._authenticator, self.keys)
            self._authenticator.start()

    def stop(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None

    def secure_server(self, sock: zmq.Socket[Any], endpoint: str, loopback: bool, channel: Channel) -> None:
        if self.keys is not None:
            sock.curve_secretkey = self.keys.secret
            sock.curve_publickey = self.keys.public
            sock.curve_server = True
            sock.zap_domain = channel.name.encode()
        elif not loopback and not self.insecure:
            raise SecurityError(f"refusing to bind {endpoint} without CURVE keys: pass --keys DIR "
                                "(python -m transport.security keygen DIR), or --insecure to accept the risk")

    def secure_client(self, sock: zmq.Socket[Any], channel: Channel) -> None:
        if self.keys is not None:
            sock.curve_serverkey = self.keys.server_key(channel)
            sock.curve_secretkey = self.keys.secret
            sock.curve_publickey = self.keys.public


def _judge_by_role(authenticator: AsyncioAuthenticator | ThreadAuthenticator, keys: Keys) -> None:
    """Make ``authenticator`` admit a CURVE client by the role of its key (:func:`refusal`) and give its
    role as the ``User-Id`` of every message it sends: pyzmq's own check is one folder for every
    socket, and its user id the key."""

    async def judged(domain: str, client_key: bytes) -> tuple[bool, bytes]:
        reason = refusal(domain, keys.roles.get(z85.encode(client_key)))
        return (True, b"OK") if reason is None else (False, reason.encode())

    authenticator._authenticate_curve = judged  # type: ignore[method-assign]
    authenticator.curve_user_id = lambda client_public_key: keys.roles.get(  # type: ignore[method-assign]
        z85.encode(client_public_key), "")


def keygen(directory: str | Path) -> Path:
    """Create a key directory (see the module docstring): a pair per role, every public key authorized
    in its role; refuses to overwrite one."""
    directory = Path(directory)
    if any((directory / f"{name}.key_secret").exists() for name in (*ROLES, "server")):
        raise SecurityError(f"{directory} already holds keys; remove it first to make new ones")
    (directory / "authorized").mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        public, _ = zmq.auth.create_certificates(directory, role)
        (directory / "authorized" / f"{role}.key").write_bytes(Path(public).read_bytes())
    for secret in directory.glob("*.key_secret"):
        os.chmod(secret, 0o600)
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transport.security", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("keygen", help="create a CURVE key directory")
    make.add_argument("directory")
    args = parser.parse_args(argv)
    try:
        path = keygen(args.directory)
    except SecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"CURVE keys written to {path}: a pair per role ({', '.join(ROLES)}) and authorized/; give each machine "
          "authorized/ and the pairs of the roles it runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
