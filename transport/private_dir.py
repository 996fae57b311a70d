"""The directory private to one user where the ZeroMQ endpoints live by default (issue 20).

Every default endpoint is an ``ipc://`` socket in ``/tmp/book-repricer-<uid>`` (:data:`DEFAULT_DIR`).
The kernel checks a unix socket's directory on ``connect``: with the directory mode 0700 and owned by
the user, no other user (root aside) can reach a socket in it. The path depends on the uid alone,
not on the environment (``XDG_RUNTIME_DIR`` or ``TMPDIR`` differ between a shell, cron and a service),
so actors started on their own with their defaults find each other, as ``tmux`` finds its server.

``/tmp`` is shared: another user can make the directory first. So whoever binds or connects an
endpoint in it claims it first (:func:`claim`): it is created mode 0700 when missing, and refused,
never used, when it is not a directory of ours that only we can enter (a symlink, another owner, a
mode open to others). Another user can therefore deny the default (the refusal says what to do),
never read or forge a message.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from typing import Final

from transport.logs import printable


def default_dir(uid: int) -> str:
    """The default directory of user ``uid``: short, so every socket path in it fits a unix socket."""
    return f"/tmp/book-repricer-{uid}"


DEFAULT_DIR: Final = default_dir(os.getuid())
PRIVATE_MODE: Final = 0o700
IN_USE_GRACE: Final = 1.0  # seconds a listener found at a bind may take to go away (see in_use)


class NotPrivate(OSError):
    """A directory of endpoints that others could enter or replace; ``strerror`` says why."""


def not_owned(owner: int, uid: int) -> str | None:
    """Why a directory owned by ``owner`` cannot be trusted by user ``uid``, or None."""
    if owner != uid:
        return f"owned by uid {owner}, not by this user (uid {uid}): another user may have made it"
    return None


def problem(mode: int, owner: int, uid: int) -> str | None:
    """Why a directory with ``st_mode`` ``mode`` and owner ``owner`` is not private to user ``uid``, or
    None. From ``lstat``: a symlink is refused (it could point anywhere another user likes)."""
    if stat.S_ISLNK(mode):
        return "a symlink, not a directory"
    if not stat.S_ISDIR(mode):
        return "not a directory"
    if (foreign := not_owned(owner, uid)) is not None:
        return foreign
    if mode & 0o077:
        return f"mode {stat.S_IMODE(mode):04o}: other users may enter it (it must be 0700)"
    return None


def claim(path: str) -> None:
    """Make ``path`` (mode 0700) if missing, then make sure it is private to this user; raise
    :class:`NotPrivate` (the reason, naming the path) if it is not."""
    try:
        os.mkdir(path, PRIVATE_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise NotPrivate(exc.errno, f"{printable(path)}: cannot create it: {exc.strerror}") from None
    st = os.lstat(path)
    if (reason := problem(st.st_mode, st.st_uid, os.getuid())) is not None:
        raise NotPrivate(errno.EPERM, f"{printable(path)} is {reason}; remove it, or give --run-dir DIR "
                                      "(a directory of your own) or explicit endpoints")


def directory_of(endpoint: str) -> str | None:
    """The directory of an ``ipc://`` endpoint's socket, or None for another transport."""
    scheme, separator, path = endpoint.partition("://")
    if scheme != "ipc" or not separator or not path:
        return None
    return os.path.dirname(os.path.abspath(path))


def claim_default(endpoint: str, default: str = DEFAULT_DIR) -> None:
    """Claim the ``default`` directory if ``endpoint`` is a socket in it (a default endpoint)."""
    if directory_of(endpoint) == default:
        claim(default)


def in_use(endpoint: str, grace: float = IN_USE_GRACE) -> bool:
    """Whether a process listens on the ``ipc://`` socket of ``endpoint``, and still does after up to
    ``grace`` seconds. ZeroMQ binds an ipc path by removing what is there: without this look a second
    system would silently take the first one's socket, where a tcp port in use is refused. The grace:
    ZeroMQ closes a listener in its I/O thread after the socket's ``close`` returns, so a socket of
    this process just closed (a Ledger replaced in a test) or a predecessor still exiting answers a
    moment longer; a system that runs keeps answering."""
    directory = directory_of(endpoint)
    if directory is None:
        return False
    path = endpoint.partition("://")[2]
    deadline = time.monotonic() + grace
    pause = 0.005
    while _listened(path):
        if time.monotonic() >= deadline:
            return True
        time.sleep(pause)  # a bounded wait, at a bind only when the socket answered
        pause = min(pause * 2, 0.1)
    return False


def _listened(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:  # no file, or no listener (ECONNREFUSED): free
            return False
    return True
