"""A Kubernetes ConfigMap (or Secret) volume as the kubelet lays it out and updates it, for tests of
what reads one: each key is a symlink ``KEY -> ..data/KEY``, ``..data`` a symlink to a hidden
timestamped folder holding the files, and an update writes a new folder, points a ``..data_tmp``
symlink at it and renames that over ``..data`` (one atomic step), then removes the old folder. A
reader never sees half an update; a file's path stays the same while its inode changes. A folder of
plain files (as podman 4.3 writes a ConfigMap volume) takes the layout on its first update, each file
replaced by its symlink in one rename."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path


class ConfigMapVolume:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._version = 0
        root.mkdir(parents=True, exist_ok=True)

    def write(self, files: Mapping[str, str]) -> None:
        """Make the volume hold exactly ``files`` (key -> text), as one atomic update."""
        self._version += 1
        folder = f"..2026_12_04_00_00_{self._version:02}.{os.getpid()}"
        (self.root / folder).mkdir()
        for key, text in files.items():
            (self.root / folder / key).write_text(text, encoding="utf-8")
        data, tmp = self.root / "..data", self.root / "..data_tmp"
        old = os.readlink(data) if data.is_symlink() else None
        tmp.symlink_to(folder)
        os.rename(tmp, data)  # the atomic step
        for key in files:
            link = self.root / key
            if not link.is_symlink():
                tmp_link = self.root / f"..{key}.tmp"
                tmp_link.symlink_to(Path("..data") / key)
                os.rename(tmp_link, link)  # over a plain file too, atomically
        for entry in self.root.iterdir():  # keys the update dropped
            if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in files:
                entry.unlink()
        if old is not None:
            shutil.rmtree(self.root / old)
