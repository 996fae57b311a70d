"""What the launcher checks before it starts anything, so that what cannot work is refused at once,
in one line, instead of crash-looping (or idling) for ever. Each check raises :class:`Refusal` with
the reason; the launcher prints ``error: <reason>`` and exits 2. The checks of the run's inputs are
shared with the backtest: :mod:`actors.run_inputs` (the data file) and :mod:`actors.algorithm.inputs`
(the books, the config, the delays)."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import socket
from collections.abc import Mapping, Sequence
from typing import Final

from actors.algorithm.inputs import delays_within_tick, no_book, pricing
from actors.run_inputs import Refusal, data_file, readable_file
from transport import endpoints, files, private_dir

__all__ = ("Refusal", "data_file", "delays_within_tick", "no_book", "pricing", "readable_file")  # the launcher's
from transport.logs import printable

SHOWN_BOOKS = 5  # ids named in the "pricing ..." line; the count says the rest
LOCK_NAME: Final = "launcher.lock"  # in --run-dir: the pid of the launcher holding it


DESCRIPTORS_BASE = 64  # a process's own: ZeroMQ's context and sockets, logs, files, the probe listener
DESCRIPTORS_PER_CHILD = 4  # the launcher's: a child's stdout and stderr pipes, its process handles


def descriptors(needed: int, what: str) -> int:
    """Make the open-files limit at least ``needed`` (raising the soft limit up to the hard one; the
    actors inherit it), or refuse: with too few, connections fail at random later (``ulimit -n 64``
    once left 0.31 of the decisions). Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return needed
    raise Refusal(f"too few file descriptors: the open-files limit is {soft} (hard {hard}), and {what} need "
                  f"{needed}: raise it (ulimit -n {needed}) or lower what needs them")


def valid_endpoints(flag: str, value: str) -> tuple[str, ...]:
    """Every endpoint of a comma-separated list, each one usable between processes."""
    parts = endpoints.split_list(value)
    if not parts:
        raise Refusal(f"{flag}: no endpoint given")
    for part in parts:
        if (problem := endpoints.problem(part)) is not None:
            raise Refusal(f"{flag} {problem}")
    return parts


def valid_url(flag: str, url: str) -> None:
    if (problem := endpoints.url_problem(url)) is not None:
        raise Refusal(f"{flag} {problem}")


def bindable(what: str, endpoint: str) -> None:
    """An endpoint this launcher's actors will bind is free now: a tcp port nobody binds, an ipc socket
    nobody listens on (ZeroMQ would silently take it over); refused here at once rather than by an
    actor failing to start."""
    if private_dir.in_use(endpoint):
        raise Refusal(f"{what} {printable(endpoint)}: already in use (another repricer?): give {what} another "
                      f"endpoint, or {TWO_SYSTEMS}")
    if not endpoint.startswith("tcp://"):
        return
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    free(what, endpoint, "" if host == "*" else host.strip("[]"), int(port))


TWO_SYSTEMS: Final = ("--run-dir DIR to run a second system beside the first (docs/operating.md#two-systems-on-"
                       "one-machine)")


def free(what: str, shown: str, host: str, port: int) -> None:
    """Binding ``host:port`` works now (with SO_REUSEADDR, as ZeroMQ and aiohttp bind). In use, the
    refusal names the option to change."""
    try:
        _bind(host, port)
    except socket.gaierror as exc:
        raise Refusal(f"{what} {printable(shown)}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise Refusal(f"{what} {printable(shown)}: {exc.strerror}") from None
        another = "another port" if "port" in what else "another endpoint"
        raise Refusal(f"{what} {printable(shown)}: already in use (another repricer?): give {what} {another}, or "
                      f"{TWO_SYSTEMS}") from None


def _bind(host: str, port: int) -> int:
    """Bind ``host:port`` (0: any free port) as the actors will, and let it go; the port bound."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()
        bound: int = sock.getsockname()[1]
        return bound


def choose_port(what: str, host: str, given: int | None, default: int, private: bool) -> int:
    """The port an HTTP actor will bind: ``given`` as it is (checked free later); 0, or none given to a
    ``private`` (--run-dir) run, a free port chosen now; else the ``default``. Always a free port for a
    private run, never "the default if free": two runs started at once would both find it free. A
    port chosen here is fixed for the run (a restarted actor binds it again); the kernel hands a freed
    port out again only after going round its ephemeral range, so another program taking it before the
    actor binds it is unlikely (and is then one clear error)."""
    if given is None and not private:
        return default
    if given:
        return given
    try:
        return _bind(host, 0)
    except OSError as exc:
        raise Refusal(f"{what} 0: no free port on {printable(host)}: {exc.strerror}") from None


def private_endpoints(listed: Sequence[tuple[str, str]], default: str = private_dir.DEFAULT_DIR) -> None:
    """The ``default`` directory of the endpoints (``/tmp/book-repricer-<uid>``), when one of the
    ``(flag, endpoint)`` pairs is in it: made mode 0700, or refused if another user could enter it."""
    for flag, endpoint in listed:
        try:
            private_dir.claim_default(endpoint, default)
        except private_dir.NotPrivate as exc:
            raise Refusal(f"{flag} {printable(endpoint)}: the default directory {exc.strerror}") from None


def run_dir(path: str) -> None:
    """``--run-dir``: created if missing (private to this user), as --db creates its directory. An
    existing one must be this user's, and writable by nobody else (who could replace its sockets)."""
    shown = printable(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except FileExistsError:
        raise Refusal(f"--run-dir {shown}: not a directory") from None
    except OSError as exc:
        raise Refusal(f"--run-dir {shown}: {exc.strerror}") from None
    if not os.path.isdir(path):
        raise Refusal(f"--run-dir {shown}: not a directory")
    if (reason := run_dir_problem(st.st_mode, st.st_uid, os.getuid())) is not None:
        raise Refusal(f"--run-dir {shown}: {reason}")


def run_dir_problem(mode: int, owner: int, uid: int) -> str | None:
    """Why an existing ``--run-dir`` is refused, or None. Looser than the default directory's 0700 (a
    directory the user chose and may share for reading): nobody else may own it or write in it."""
    if (foreign := private_dir.not_owned(owner, uid)) is not None:
        return foreign
    if mode & 0o022:
        return f"mode {mode & 0o7777:04o}: other users may replace its sockets (chmod go-w, or 0700)"
    return None


def hold_run_dir(path: str) -> int:
    """Hold ``--run-dir`` for this launcher's life: a second launcher with the same directory would
    take over its sockets. Returns the lock file's descriptor: closed, or the process gone, the lock
    goes."""
    shown = printable(path)
    lock = os.path.join(path, LOCK_NAME)
    try:
        fd, _ = files.open_fd(lock, os.O_RDWR | os.O_CREAT, 0o600)  # a FIFO or device put there: refused
    except OSError as exc:
        raise Refusal(f"--run-dir {shown}: cannot create {LOCK_NAME}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise Refusal(f"--run-dir {shown}: in use by another launcher (pid {printable(holder)}): give each system "
                      "its own directory") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def priced(books: Sequence[str], pairs: Mapping[str, int], paused: int = 0, workers: int = 1) -> str:
    """What is priced, for the log: the (book, strategy) pairs as configured -- the count, the books
    (the first few ids) and the books of each strategy. The Algorithm's own line says the same count
    (or, with several workers, each one's share)."""
    shown = ", ".join(printable(book, 40) for book in books[:SHOWN_BOOKS])
    more = ", ..." if len(books) > SHOWN_BOOKS else ""
    total = sum(pairs.values())
    each = ", ".join(f"{name} {count}" for name, count in pairs.items())
    line = (f"pricing {total} pair(s) (book, strategy): {len(books)} book(s) ({shown}{more}); book(s) per "
            f"strategy: {each}")
    if paused:
        line += f"; {paused} paused"
    if workers > 1:
        line += f"; shared by {workers} Algorithm workers"
    return line
