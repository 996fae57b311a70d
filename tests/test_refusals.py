"""What cannot work is refused at start: one line ``error: ...`` on stderr and exit code 2, before any
actor is started (issue 15). Checked on the launcher's own parsing (fast), and end to end for a few."""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repricer_supervisor import launcher, preflight
from repricer_supervisor.supervisor import Supervisor, SupervisorError
from tests.helpers import REPO, python
from transport.security import keygen


def refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the launcher refuses ``argv`` with (exit code 2 checked)."""
    with pytest.raises(SystemExit) as exited:
        launcher.parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err  # one line, no usage dump, no traceback
    return err.strip()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "comments.txt").write_text("# no id here\n\n")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00B001\n")
    (tmp_path / "slow.toml").write_text('[strategies.slow]\ndelay = 7\n'
                                        '[[books]]\nids = ["B001"]\nstrategies = ["slow"]\n')
    (tmp_path / "bad.toml").write_text('[strategies.fast]\nwindow = 0\n')
    (tmp_path / "nokeys").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o777)  # a run directory anyone may write in
    (tmp_path / "unreadable.csv").write_text("timestamp,book_id,price\n")
    (tmp_path / "unreadable.csv").chmod(0)
    (tmp_path / "semicolons.csv").write_text("timestamp;book_id;price\n2024-01-01;B001;18.02\n")
    (tmp_path / "commas.csv").write_text("timestamp,book_id,price\n2024-01-01,B001,18,02\n")
    (tmp_path / "header.csv").write_text("timestamp,book_id,price\n")
    return tmp_path


CASES = [
    # the data file
    (["--data-file", "/nonexistent.csv"], "--data-file /nonexistent.csv: no such file"),
    (["--data-file", "/tmp"], "--data-file /tmp: not a regular file"),
    (["--wait-for-data"], "--wait-for-data is for --mode follow"),
    # a data file that can give no decision (issue 21): the file, the line and why
    (["--data-file", "{tmp}/semicolons.csv"], "--data-file {tmp}/semicolons.csv: line 1: unusable header: the "
     "header has no 'price' column (got ['timestamp;book_id;price']); expected e.g. 'timestamp,book_id,price' (its "
     "fields are separated by semicolons: the file must be comma-separated)"),
    (["--data-file", "{tmp}/commas.csv"], "--data-file {tmp}/commas.csv: no valid row for any of the 5 book(s) "
     "priced; first bad line 2: wrong_column_count: expected 3 fields as in the header, got 4 (a decimal comma? "
     "prices are written with a point, e.g. 18.02)"),
    (["--data-file", "{tmp}/header.csv", "--books", "B001"], "--data-file {tmp}/header.csv: a header and no data row"),
    # x against the tick, for --delay and for a config's strategy
    (["--delay", "10", "--tick", "2"], "--delay 10 s is not shorter than --tick 2 s"),
    (["--delay", "2", "--tick", "2"], "--delay 2 s is not shorter than --tick 2 s"),
    (["--config", "{tmp}/slow.toml"], "strategy 'slow': delay 7 s is not shorter than --tick 5 s"),
    (["--config", "{tmp}/bad.toml"], "strategies.fast.window"),
    # nothing to price
    (["--books", ","], "no book to price: --books lists none"),
    (["--books-file", "{tmp}/empty.txt"], "no book to price: --books-file"),
    (["--books-file", "{tmp}/comments.txt"], "no book to price: --books-file"),
    (["--books-file", "{tmp}/binary.txt"], "not UTF-8 text"),
    (["--books-file", "/nonexistent"], "No such file or directory"),
    (["--config", "{tmp}/slow.toml", "--books-file", "/nonexistent"], "--books-file /nonexistent with --config "
     "{tmp}/slow.toml: the config names the books priced (a [[books]] table's ids or file = ...): give one or the "
     "other"),  # the file was silently not read (issue 21's trial)
    # numbers out of range (each actor's options class checks its own)
    (["--tick", "0"], "--tick must be within"),
    (["--api-port", "70000"], "--api-port must be within 0..65535"),
    (["--run", "algorithm", "--api-port", "0"], "--api-port 0 (any free port) with no APIServer started here leaves "
     "the Algorithm nowhere to send requests"),
    (["--workers", "0"], "--workers must be within 1..64"),
    (["--workers", "1000"], "--workers must be within 1..64"),
    (["--data-managers", "100"], "--data-managers must be within 1..16"),
    (["--workers-total", "2000"], "--workers-total must be within 1..1024"),
    (["--workers", "2", "--workers-total", "3", "--worker-offset", "2"], "exceeds --workers-total 3"),
    (["--max-in-flight", "0"], "--max-in-flight must be within"),
    # durations and timeouts
    (["--hang-timeout", "0"], "--hang-timeout must be within 0.1..3600 s"),
    (["--hang-timeout", "-1"], "--hang-timeout must be within"),
    (["--hang-timeout", "nan"], "--hang-timeout must be within"),
    (["--max-backoff", "0.1"], "--max-backoff must be within 0.5..3600 s"),
    (["--duration", "0"], "--duration must be within"),
    (["--duration", "-5"], "--duration must be within"),
    (["--duration", "inf"], "--duration must be within"),
    (["--grace", "0"], "--grace must be within"),
    (["--status-every", "0"], "--status-every must be within"),
    # actors and endpoints
    (["--run", "scheduler,bogus"],
     "--run takes a list of scheduler, datamanager, apiserver, ledger, algorithm, dashboard (unknown: bogus)"),
    (["--run", ","], "--run takes a list of"),
    (["--ticks-endpoint", "tcp://127.0.0.1:99999"], "the port must be a number in 1..65535"),
    (["--ticks-endpoint", "tcp://127.0.0.1:0"], "the port must be a number in 1..65535"),
    (["--ticks-endpoint", "inproc://x"], "expected tcp://HOST:PORT or ipc://PATH"),
    (["--ticks-endpoint", "tcp://127.0.0.1:5555,tcp://127.0.0.1:5554"], "--ticks-endpoint takes one endpoint"),
    (["--data-endpoint", "tcp://127.0.0.1:65535", "--data-managers", "2"], "the port must be a number in 1..65535"),
    (["--events-endpoint", "ipc:///" + "x" * 200], "a unix socket path is at most 107 bytes"),
    (["--api-url", "ftp://host"], "--api-url ftp://host: expected http://HOST:PORT"),
    (["--run-dir", "{tmp}/empty.txt"], "--run-dir {tmp}/empty.txt: not a directory"),
    (["--run-dir", "{tmp}/shared"], "--run-dir {tmp}/shared: mode 0777: other users may replace its sockets"),
    (["--keys", "{tmp}/nokeys"], "cannot load the launcher CURVE keys from {tmp}/nokeys: no launcher.key_secret"),
    # a public address anywhere in a list needs keys (transport.endpoints.is_loopback on lists)
    (["--data-endpoint", "tcp://127.0.0.1:5556,tcp://8.8.8.8:5556"],
     "refusing to bind tcp://8.8.8.8:5556 without CURVE keys"),
    (["--ticks-endpoint", "tcp://0.0.0.0:5599"], "refusing to bind tcp://0.0.0.0:5599 without CURVE keys"),
    (["--events-endpoint", "tcp://*:5599"], "refusing to bind tcp://*:5599 without CURVE keys"),
]


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_what_cannot_work_is_refused_in_one_line(argv: list[str], message: str, files: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal([arg.replace("{tmp}", str(files)) for arg in argv], capsys)
    assert message.replace("{tmp}", str(files)) in line


def test_an_unreadable_data_file_is_refused(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = files / "unreadable.csv"
    try:
        path.open("rb").close()
        pytest.skip("running as a user who can read a file with mode 000 (root)")
    except PermissionError:
        pass
    assert "Permission denied" in refusal(["--data-file", str(path)], capsys)


@pytest.mark.parametrize("flag", ["--api-port", "--ticks-endpoint", "--data-endpoint", "--events-endpoint",
                                  "--heartbeat-endpoint"])
def test_a_port_in_use_is_refused_at_start(flag: str, taken_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    value = str(taken_port) if flag == "--api-port" else f"tcp://127.0.0.1:{taken_port}"
    # Issue 21: the refusal names the option to change, and the one option that runs a second system.
    another = "another port" if flag == "--api-port" else "another endpoint"
    assert refusal([flag, value], capsys).endswith(
        f"already in use (another repricer?): give {flag} {another}, or --run-dir DIR to run a second system beside "
        "the first (docs/operating.md#two-systems-on-one-machine)")


def test_a_port_only_another_launcher_binds_is_not_checked(taken_port: int) -> None:
    # This launcher runs the Algorithm only: the APIServer's port is someone else's to bind.
    args = launcher.parse_args(["--run", "algorithm", "--api-port", str(taken_port)])
    assert args.books_priced == ["B001", "B002", "B003", "B004", "B005"]


def test_the_keys_pass_the_check_when_complete(tmp_path: Path) -> None:
    keys = keygen(tmp_path / "keys")
    args = launcher.parse_args(["--keys", str(keys), "--ticks-endpoint", "tcp://0.0.0.0:5599", "--data-endpoint",
                                "tcp://127.0.0.1:5556,tcp://0.0.0.0:5556"])
    assert args.security.keys is not None


def test_the_supervisor_refuses_a_heartbeat_endpoint_it_cannot_bind(taken_port: int) -> None:
    # What the start-time check cannot see (a port taken between the check and the bind) still ends
    # in one clear error, not a traceback.
    with pytest.raises(SupervisorError, match=f"cannot bind the heartbeat endpoint tcp://127.0.0.1:{taken_port}: "
                                              "Address already in use"):
        Supervisor([], f"tcp://127.0.0.1:{taken_port}").open()


def test_end_to_end_a_typo_in_the_data_path_exits_2_at_once() -> None:
    done = python("launcher.py", "--data-file", "/nonexistent.csv")
    assert (done.returncode, done.stderr, done.stdout) == (2, "error: --data-file /nonexistent.csv: no such file\n", "")


def test_end_to_end_the_old_name_of_the_data_file_still_works_and_warns() -> None:
    done = python("launcher.py", "--data", "/nonexistent.csv")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("warning: --data is deprecated and goes in the next release: use --data-file\n"
                           "error: --data-file /nonexistent.csv: no such file\n")


def test_end_to_end_one_public_address_in_a_list_needs_keys() -> None:
    done = python("launcher.py", "--data-endpoint", "tcp://127.0.0.1:5556, tcp://192.0.2.1:5556")
    assert done.returncode == 2
    assert done.stderr == ("error: refusing to bind tcp://192.0.2.1:5556 without CURVE keys: pass --keys DIR "
                           "(python -m transport.security keygen DIR), or --insecure to accept the risk\n")


def private(place: Path) -> list[str]:
    """A run directory of the test's own: its endpoints and ports cannot be taken by a repricer already
    running on the default ones (the checks at start refuse those)."""
    return ["--run-dir", str(place / "run")]


def test_what_is_priced_is_logged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    books = tmp_path / "books.txt"
    books.write_text("\n".join(f"X{i}" for i in range(12)) + "\n")
    data = tmp_path / "data.csv"
    data.write_text("book_id,price\n" + "".join(f"X{i},1.00\n" for i in range(12)))
    args = launcher.parse_args(["--books-file", str(books), "--data-file", str(data), *private(tmp_path)])
    assert args.books_priced[:2] == ["X0", "X1"] and len(args.books_priced) == 12
    assert preflight.priced(args.books_priced, args.pairs) == (
        "pricing 12 pair(s) (book, strategy): 12 book(s) (X0, X1, X2, X3, X4, ...); book(s) per strategy: default 12")


def test_what_is_priced_counts_the_pairs_as_configured(tmp_path: Path) -> None:
    # Issue 21: "pricing 20 book(s) ... strategies default, cautious" suggested 40 pairs, then the
    # Algorithm said 23. The launcher says the pairs as configured, as the Algorithm counts them.
    books = [f"ISBN9780000{i:02d}" for i in range(1, 21)]
    (tmp_path / "c.toml").write_text(
        '[strategies.default]\n[strategies.cautious]\nunsold_factor = "0.95"\n'
        f'[[books]]\nids = {books!r}\nstrategies = ["default"]\n'.replace("'", '"')
        + f'[[books]]\nids = {books[:3]!r}\nstrategies = ["cautious"]\n'.replace("'", '"')
        + '[pause]\nbooks = ["ISBN978000001"]\n')
    (tmp_path / "data.csv").write_text("book_id,price\n" + "".join(f"{b},10.00\n" for b in books))
    args = launcher.parse_args(["--config", str(tmp_path / "c.toml"), "--data-file", str(tmp_path / "data.csv"),
                                "--workers", "2", *private(tmp_path)])
    line = preflight.priced(args.books_priced, args.pairs, args.paused, args.options.workers)
    assert line == ("pricing 23 pair(s) (book, strategy): 20 book(s) (ISBN978000001, ISBN978000002, ISBN978000003, "
                    "ISBN978000004, ISBN978000005, ...); book(s) per strategy: default 20, cautious 3; 2 paused; "
                    "shared by 2 Algorithm workers")


def test_follow_mode_waits_for_a_file_that_cannot_be_read_yet(files: Path) -> None:
    # In follow mode rows may still come: the launcher starts, and says why it waits in one line.
    startup = launcher.parse_args(["--mode", "follow", "--data-file", str(files / "semicolons.csv"), *private(files)])
    assert startup.data is not None and startup.data.refused
    assert startup.data.problem("--data-file", "x.csv").startswith("--data-file x.csv: line 1: unusable header")


def test_end_to_end_a_semicolon_file_exits_2_at_once(files: Path) -> None:
    # Issue 21: it used to run with exit code 0, no decision, and a warning every second.
    done = python("launcher.py", "--data-file", str(files / "semicolons.csv"), "--duration", "5")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"error: --data-file {files}/semicolons.csv: line 1: unusable header: ")
    assert done.stderr.count("\n") == 1


def test_follow_mode_may_wait_for_the_data_file_when_told(tmp_path: Path) -> None:
    argv = ["--mode", "follow", "--wait-for-data", "--data-file", str(tmp_path / "later.csv"), *private(tmp_path)]
    options = launcher.parse_args(argv).options
    assert options.wait_for_data and options.mode == "follow"


def test_end_to_end_too_few_descriptors_is_refused_with_the_number_needed(tmp_path: Path) -> None:
    """Issue 20: under ``ulimit -n 64`` the system ran, keeping 0.31 of its decisions."""
    data = tmp_path / "p.csv"
    data.write_text("timestamp,book_id,price\nt0,B1,10.00\n")

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    done = subprocess.run([sys.executable, "launcher.py", "--data-file", str(data), "--books", "B1"], cwd=REPO,
                          capture_output=True, text=True, timeout=30, preexec_fn=limited)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: too few file descriptors: the open-files limit is 64 (hard 64), and these "
                                  "actors (the APIServer takes 512 connections, an Algorithm worker 64; 8 processes) "
                                  "need 576: raise it (ulimit -n 576)"), done.stderr


def test_end_to_end_a_low_soft_descriptor_limit_is_raised_and_every_book_decided(tmp_path: Path, ipc_dir: Path) -> None:
    """Ours beside the issue's: ``ulimit -Sn 64`` under a high hard limit: raised at start (the actors
    inherit it), and every book is decided."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"the hard limit here is {hard}")
    data = tmp_path / "p.csv"
    data.write_text("book_id,price\n" + "".join(f"B{b},1{i}.00\n" for i in range(6) for b in range(1, 4)))

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    with open(tmp_path / "stderr", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "launcher.py", "--data-file", str(data), "--books", "B1,B2,B3", "--tick", "0.2", "--delay",
             "0", "--json", "--run-dir", str(ipc_dir), "--api-port", "0", "--no-dashboard"], cwd=REPO,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, preexec_fn=limited, start_new_session=True)
    assert process.stdout is not None
    decided: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while decided != {"B1", "B2", "B3"} and time.monotonic() < deadline:
            if select.select([process.stdout], [], [], deadline - time.monotonic())[0]:
                line = process.stdout.readline()
                if not line:
                    break  # the launcher exited
                decided.add(json.loads(line)["book"])
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        process.stdout.close()
    log = (tmp_path / "stderr").read_text("utf-8", "replace")
    assert decided == {"B1", "B2", "B3"}, log[-3000:]
    assert process.returncode == 0 and "too few file descriptors" not in log


def test_a_low_soft_descriptor_limit_is_raised_to_what_is_needed() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 700:
        pytest.skip(f"the hard limit here is {hard}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (600, hard))
        assert preflight.descriptors(650, "a test") == 650
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (650, hard)
        assert preflight.descriptors(100, "a test") == 650  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
