"""Opening files without waiting: a FIFO, a device or a directory swapped in for a file is refused at
once (an ``open()`` of a FIFO would wait for a writer for ever)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from transport import files
from transport.roles import ALGORITHM
from transport.security import Keys, SecurityError, keygen


def test_a_regular_file_is_read_and_written(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    with files.open_text(path, write=True) as out:
        out.write("one\n")
    with files.open_text(path, write=True) as out:  # truncated, not appended
        out.write("two\n")
    assert files.read_text(path) == "two\n"
    fd, info = files.open_fd(path)
    os.close(fd)
    assert info.st_size == 4


@pytest.mark.parametrize("mode", ["rb", "w"])
def test_a_fifo_is_refused_at_once_for_reading_and_writing(tmp_path: Path, mode: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError) as refused:  # without O_NONBLOCK this would wait for ever
        files.open_text(fifo, write=True) if mode == "w" else files.open_bytes(fifo)
    # reading: opened, then refused by what fstat says; writing: no reader, so the open itself fails
    assert isinstance(refused.value, files.NotRegularFile) or refused.value.errno == errno.ENXIO
    if isinstance(refused.value, files.NotRegularFile):
        assert refused.value.strerror == "not a regular file (a FIFO)"


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/", "a directory")])
def test_devices_and_directories_are_refused(path: str, kind: str) -> None:
    with pytest.raises(files.NotRegularFile, match=kind):
        files.open_fd(path)
    with pytest.raises(files.NotRegularFile):
        files.regular_or_absent(path)


def test_regular_or_absent_lets_a_missing_or_regular_path_through(tmp_path: Path) -> None:
    files.regular_or_absent(tmp_path / "missing")
    (tmp_path / "f").write_bytes(b"")
    files.regular_or_absent(tmp_path / "f")


def test_a_fifo_among_the_keys_is_refused_at_once(tmp_path: Path) -> None:
    folder = keygen(tmp_path / "keys")
    (folder / "algorithm.key_secret").unlink()
    os.mkfifo(folder / "algorithm.key_secret")  # zmq.auth's own open() would wait for a writer
    with pytest.raises(SecurityError, match="not a regular file"):
        Keys.load(folder, ALGORITHM)
