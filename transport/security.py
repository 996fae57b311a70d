"""CurveZMQ authentication and encryption for actors that talk across machines.

A key directory (made by ``python -m transport.security keygen DIR``) holds:

- ``server.key`` / ``server.key_secret``: the keypair of every socket that *binds* (ticks PUB,
  DataManager ROUTER, launcher heartbeat PULL);
- ``client.key`` / ``client.key_secret``: the keypair of every socket that *connects*;
- ``authorized/``: the public keys of clients allowed in (``client.key`` to begin with; add a
  machine's own ``client.key`` there to admit it).

Copy the directory to every machine (the secret files are the credentials: keep them 0600). Binding
a non-loopback address without keys is refused unless ``--insecure`` is given. A client whose key is
not authorized is refused by the ZAP handler, logged and counted; a client with the wrong server key
fails the CURVE handshake and gets nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
import zmq.auth
from zmq.auth.asyncio import AsyncioAuthenticator
from zmq.auth.thread import ThreadAuthenticator

from transport import files
from transport.logs import RateLimitedLog

log = logging.getLogger(__name__)


class SecurityError(Exception):
    """Keys missing or unreadable, or an insecure bind that was not asked for."""


@dataclass(frozen=True, slots=True)
class Keys:
    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes
    authorized: Path

    @classmethod
    def load(cls, directory: str | Path, authorized: str | Path | None = None) -> Keys:
        """The keys in ``directory``; the authorized clients' public keys in ``authorized`` if given (e.g.
        a second Kubernetes Secret, whose volume cannot hold a subfolder), else in ``directory/authorized``."""
        directory = Path(directory)
        allowed = Path(authorized) if authorized is not None else directory / "authorized"
        try:
            # zmq.auth opens these with open(): a FIFO would wait for a writer for ever
            for path in (directory / "server.key_secret", directory / "client.key_secret", *allowed.glob("*.key")):
                files.regular_or_absent(path)
            server_public, server_secret = zmq.auth.load_certificate(directory / "server.key_secret")
            client_public, client_secret = zmq.auth.load_certificate(directory / "client.key_secret")
        except (OSError, ValueError) as exc:
            raise SecurityError(f"cannot load CURVE keys from {directory}: {exc} "
                                f"(make them with: python -m transport.security keygen {directory})") from None
        if server_secret is None or client_secret is None:
            raise SecurityError(f"incomplete key directory {directory}: re-run keygen")
        if not allowed.is_dir():
            raise SecurityError(f"no folder of authorized client keys at {allowed}"
                                + (": re-run keygen" if authorized is None else ""))
        return cls(server_public, server_secret, client_public, client_secret, allowed)


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
        self.denied = 0  # clients refused by the ZAP handler (CURVE key not authorized)
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
            self._authenticator.start()
            self._authenticator.configure_curve(domain="*", location=str(self.keys.authorized))

    def stop(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None

    def secure_server(self, sock: zmq.Socket[Any], endpoint: str, loopback: bool) -> None:
        if self.keys is not None:
            sock.curve_secretkey = self.keys.server_secret
            sock.curve_publickey = self.keys.server_public
            sock.curve_server = True
        elif not loopback and not self.insecure:
            raise SecurityError(f"refusing to bind {endpoint} without CURVE keys: pass --keys DIR "
                                "(python -m transport.security keygen DIR), or --insecure to accept the risk")

    def secure_client(self, sock: zmq.Socket[Any]) -> None:
        if self.keys is not None:
            sock.curve_secretkey = self.keys.client_secret
            sock.curve_publickey = self.keys.client_public
            sock.curve_serverkey = self.keys.server_public


def keygen(directory: str | Path) -> Path:
    """Create a key directory (see the module docstring); refuses to overwrite one."""
    directory = Path(directory)
    if (directory / "server.key_secret").exists():
        raise SecurityError(f"{directory} already holds keys; remove it first to make new ones")
    (directory / "authorized").mkdir(parents=True, exist_ok=True)
    zmq.auth.create_certificates(directory, "server")
    client_public, _ = zmq.auth.create_certificates(directory, "client")
    (directory / "authorized" / "client.key").write_bytes(Path(client_public).read_bytes())
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
    print(f"CURVE keys written to {path}; copy the directory to every machine of the system")
    return 0


if __name__ == "__main__":
    sys.exit(main())
