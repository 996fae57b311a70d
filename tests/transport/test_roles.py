"""Per-role CurveZMQ keys (issue 20 items 3 and 4): which role's key each socket admits, who may write
to the Ledger, and that only the Scheduler's key can publish ticks to a worker."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import zmq
import zmq.utils.monitor

from actors import kinds
from transport import roles, security
from transport.roles import (
    ALGORITHM,
    DASHBOARD,
    DATA_MANAGER,
    LAUNCHER,
    SCHEDULER,
    TICKS,
    may_write_ledger,
    refusal,
    role_of,
)
from transport.security import Keys, Security, keygen
from transport.sockets import Sockets


def test_the_roles_are_the_actor_kinds_and_the_launcher() -> None:
    assert set(roles.ROLES) == {kind.name for kind in kinds.KINDS} | {LAUNCHER}


@pytest.mark.parametrize(("domain", "role", "expected"), [
    ("ticks", ALGORITHM, None),
    ("ticks", DATA_MANAGER, "a key of role datamanager on the ticks socket, which admits algorithm only"),
    ("data", ALGORITHM, None),
    ("data", DASHBOARD, "a key of role dashboard on the data socket, which admits algorithm only"),
    ("ledger", ALGORITHM, None),
    ("ledger", DASHBOARD, None),  # it reads; writing is refused per message (may_write_ledger)
    ("ledger", SCHEDULER, "a key of role scheduler on the ledger socket, which admits algorithm, dashboard only"),
    ("heartbeat", SCHEDULER, None),
    ("events", DASHBOARD, None),
    ("events", ALGORITHM, "a key of role algorithm on the events socket, which admits dashboard only"),
    ("ledger", None, "a key not in the authorized folder, on the ledger socket"),
    ("other", ALGORITHM, "no such socket kind other"),
])
def test_which_role_each_socket_admits(domain: str, role: str | None, expected: str | None) -> None:
    assert refusal(domain, role) == expected


@pytest.mark.parametrize(("user_id", "writes"), [
    (ALGORITHM, True), (DASHBOARD, False), (SCHEDULER, False), ("", False), (None, False),
])
def test_only_a_worker_may_write_to_the_ledger(user_id: str | None, writes: bool) -> None:
    assert may_write_ledger(user_id) is writes


@pytest.mark.parametrize(("name", "role"), [
    ("algorithm.key", ALGORITHM), ("algorithm-host2.key", ALGORITHM), ("dashboard-a-b.key", DASHBOARD),
    ("client.key", None), ("algorithm.key_secret", None), ("algorithmx.key", None),
])
def test_the_role_an_authorized_key_file_names(name: str, role: str | None) -> None:
    assert role_of(name) == role


def test_an_old_key_directory_and_a_badly_named_key_are_refused(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "authorized").mkdir(parents=True)
    zmq.auth.create_certificates(old, "server")
    with pytest.raises(security.SecurityError, match="holds keys of the old layout"):
        Keys.load(old, ALGORITHM)
    new = keygen(tmp_path / "new")
    (new / "authorized" / "someone.key").write_bytes((new / "authorized" / "algorithm.key").read_bytes())
    with pytest.raises(security.SecurityError, match=r"someone\.key: an authorized key must be named ROLE\.key"):
        Keys.load(new, ALGORITHM)


def handshake(keys: Path, publisher: str) -> int:
    """The handshake event a worker's tick SUB causes on a PUB bound with ``publisher``'s keys."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    server = Security(Keys.load(keys, publisher))
    server.start(ctx)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(ctx.term)
        cleanup.callback(server.stop)
        endpoint = f"ipc://{keys}/ticks-{publisher}.sock"
        pub = cleanup.enter_context(Sockets(ctx, server).pub(endpoint))
        monitor = cleanup.enter_context(pub.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL))
        cleanup.enter_context(Sockets(ctx, Security(Keys.load(keys, ALGORITHM))).sub(endpoint, channel=TICKS))
        # An event, not a pause: the first verdict of the handshake.
        assert monitor.poll(20_000), "no handshake within 20 s"
        event: int = zmq.utils.monitor.recv_monitor_message(monitor)["event"]
        return event


def test_only_the_scheduler_key_can_publish_ticks_to_a_worker(tmp_path: Path) -> None:
    keys = keygen(tmp_path / "k")
    assert handshake(keys, SCHEDULER) == zmq.EVENT_HANDSHAKE_SUCCEEDED
    # Another role's authorized key binding the ticks endpoint: the worker expects the Scheduler's key.
    assert handshake(keys, DATA_MANAGER) != zmq.EVENT_HANDSHAKE_SUCCEEDED
