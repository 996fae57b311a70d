"""The default endpoints' directory (issue 20 item 1): private to the user, refused when another
user could enter or replace it; an ipc socket in use is seen as in use."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest
import zmq

from repricer_supervisor import launcher, preflight
from transport import endpoints, private_dir
from transport.endpoints import Endpoints

DIR = stat.S_IFDIR


@pytest.mark.parametrize(("mode", "owner", "expected"), [
    (DIR | 0o700, 1000, None),
    (DIR | 0o750, 1000, "mode 0750: other users may enter it (it must be 0700)"),
    (DIR | 0o1777, 1000, "mode 1777: other users may enter it (it must be 0700)"),
    (DIR | 0o700, 1001, "owned by uid 1001, not by this user (uid 1000): another user may have made it"),
    (stat.S_IFLNK | 0o777, 1000, "a symlink, not a directory"),
    (stat.S_IFREG | 0o600, 1000, "not a directory"),
])
def test_what_makes_a_directory_not_private(mode: int, owner: int, expected: str | None) -> None:
    assert private_dir.problem(mode, owner, 1000) == expected


@pytest.mark.parametrize(("mode", "owner", "expected"), [
    (DIR | 0o700, 1000, None),
    (DIR | 0o755, 1000, None),  # a --run-dir the user chose may be readable by others
    (DIR | 0o775, 1000, "mode 0775: other users may replace its sockets (chmod go-w, or 0700)"),
    (DIR | 0o700, 0, "owned by uid 0, not by this user (uid 1000): another user may have made it"),
])
def test_what_makes_a_run_dir_refused(mode: int, owner: int, expected: str | None) -> None:
    assert preflight.run_dir_problem(mode, owner, 1000) == expected


def test_the_defaults_are_the_run_directory_layout_in_the_default_directory() -> None:
    # Every actor started on its own with its defaults meets the others, at the launcher's sockets.
    assert f"/tmp/book-repricer-{os.getuid()}" == private_dir.DEFAULT_DIR
    assert Endpoints() == Endpoints.in_directory(private_dir.DEFAULT_DIR, 8080, 1)
    assert f"ipc://{private_dir.DEFAULT_DIR}/ticks.sock" == endpoints.DEFAULT_TICKS


def test_several_data_managers_by_default_get_sockets_side_by_side() -> None:
    options = launcher.parse_options(["--data-managers", "2"])
    assert options.data_endpoints == (endpoints.DEFAULT_DATA, f"ipc://{private_dir.DEFAULT_DIR}/data-1.sock")


@pytest.mark.parametrize(("endpoint", "index", "expected"), [
    ("ipc:///r/data-0.sock", 0, "ipc:///r/data-0.sock"),
    ("ipc:///r/data-0.sock", 2, "ipc:///r/data-2.sock"),
    ("ipc:///r/dm.sock", 1, "ipc:///r/dm-1.sock"),
    ("tcp://127.0.0.1:5556", 2, "tcp://127.0.0.1:5558"),
])
def test_several_data_managers_from_one_endpoint(endpoint: str, index: int, expected: str) -> None:
    assert endpoints.numbered(endpoint, index) == expected


def test_claim_makes_the_directory_0700(tmp_path: Path) -> None:
    path = tmp_path / "mine"
    private_dir.claim(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    private_dir.claim(str(path))  # claimed again: still fine


def test_claim_refuses_an_open_directory_and_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir(mode=0o755)
    os.chmod(tmp_path / "open", 0o755)
    with pytest.raises(private_dir.NotPrivate, match="mode 0755: other users may enter it"):
        private_dir.claim(str(tmp_path / "open"))
    (tmp_path / "link").symlink_to(tmp_path / "open")
    with pytest.raises(private_dir.NotPrivate, match="a symlink"):
        private_dir.claim(str(tmp_path / "link"))


def test_the_launcher_refuses_a_default_directory_another_user_made(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    try:
        os.chown(theirs, 65534, 65534)
    except PermissionError:
        pytest.skip("this root may not give a directory away (no CAP_CHOWN)")
    with pytest.raises(preflight.Refusal, match=rf"^--ticks-endpoint ipc://{theirs}/ticks.sock: the default "
                                                rf"directory {theirs} is owned by uid 65534, not by this user"):
        preflight.private_endpoints([("--ticks-endpoint", f"ipc://{theirs}/ticks.sock")], str(theirs))
    preflight.private_endpoints([("--ticks-endpoint", "tcp://127.0.0.1:5555")], str(theirs))  # not in it: fine


def test_an_ipc_socket_is_in_use_while_someone_listens(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/s.sock"
    assert not private_dir.in_use(endpoint)
    with zmq.Context() as ctx, ctx.socket(zmq.ROUTER) as sock:
        sock.bind(endpoint)
        assert private_dir.in_use(endpoint, grace=0.0)
        with pytest.raises(preflight.Refusal, match="already in use \\(another repricer\\?\\): give --ticks-endpoint"):
            preflight.bindable("--ticks-endpoint", endpoint)
        sock.close(linger=0)
    assert (tmp_path / "s.sock").exists() and not private_dir.in_use(endpoint)  # a stale file is free


def test_a_socket_of_this_process_just_closed_is_free_to_bind_again(tmp_path: Path) -> None:
    # ZeroMQ closes the listener in its I/O thread after close() returns: a Ledger replaced in one
    # process (a test's) binds its successor at once, never refused as "in use".
    endpoint = f"ipc://{tmp_path}/s.sock"
    with zmq.Context() as ctx:
        for _ in range(20):
            with ctx.socket(zmq.ROUTER) as sock:
                sock.bind(endpoint)
                sock.close(linger=0)
            assert not private_dir.in_use(endpoint)


def connect_as(uid: int, path: Path) -> str:
    """What a process of user ``uid`` gets when it connects to the unix socket ``path`` (a forked child:
    the interpreter's own files need not be readable by that user)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no Python-level cleanup, only the answer
        try:
            os.setgid(uid)
            os.setuid(uid)
        except OSError:
            answer = "cannot change user"  # root without CAP_SETUID (some containers)
        else:
            try:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(str(path))
                answer = "connected"
            except OSError as exc:
                answer = f"{type(exc).__name__}: {exc.strerror}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


def test_another_user_cannot_connect_to_a_socket_in_the_private_directory() -> None:
    """The kernel's own check, over a real ZeroMQ socket and a process of another uid: the socket file
    opened to everyone (0777), only the directory's 0700 keeps the other user out."""
    if os.getuid() != 0:
        pytest.skip("a process of another user needs root")
    results = {}
    # Under /tmp itself: pytest's own tmp_path lies in a directory only its user may enter.
    with tempfile.TemporaryDirectory(prefix="repricer-test-") as top, zmq.Context() as ctx:
        tmp_path = Path(top)
        os.chmod(tmp_path, 0o755)
        for name, mode in (("open", 0o755), ("private", 0o700)):
            directory = tmp_path / name
            directory.mkdir()
            os.chmod(directory, mode)
            with ctx.socket(zmq.ROUTER) as sock:
                sock.bind(f"ipc://{directory}/ticks.sock")
                os.chmod(directory / "ticks.sock", 0o777)
                results[name] = connect_as(65534, directory / "ticks.sock")
                if results[name] == "cannot change user":
                    pytest.skip("this root may not change its user (no CAP_SETUID)")
                sock.close(linger=0)
    assert results == {"open": "connected", "private": "PermissionError: Permission denied"}
