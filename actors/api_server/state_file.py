"""The APIServer's persisted id high-water mark (``--state-file``): a small JSON file replaced
atomically, so a crash leaves either the old mark or the new one, never a torn file."""

from __future__ import annotations

import json
import os

from actors.api_server import request_ids
from transport import files


class StateFile:
    """The persisted id high-water mark: ``{"next_block_end": N}``, replaced atomically."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> int | None:
        """The persisted mark, or None if there is no file yet. A corrupt file raises: guessing could
        reissue ids."""
        try:
            with files.open_text(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read id state file {self.path}: {e}") from e
        value = data.get("next_block_end") if isinstance(data, dict) else None
        if type(value) is not int or not 0 <= value <= request_ids.MAX_ID:
            raise ValueError(f"id state file {self.path} has no valid next_block_end: {data!r}")
        return value

    def save(self, next_block_end: int) -> None:
        # Write a temp file, fsync, then rename over the old one: a crash leaves either the old or the
        # new mark, never a torn file; the directory fsync makes the rename itself durable.
        tmp = f"{self.path}.tmp.{os.getpid()}"
        with files.open_text(tmp, write=True) as f:
            json.dump({"next_block_end": next_block_end}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
