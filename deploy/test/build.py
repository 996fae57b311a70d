"""The container test's build: podman and mmdebstrap from Debian's packages, a Debian base image made with
mmdebstrap, the locked wheels, and the image from deploy/Containerfile.

Standard library only, so that ``.ci/run`` can start it (``deploy/test/run.sh --prepare``) in the
background while the project's venv is made and pytest runs: the container test after pytest
(deploy/test/run.py, which builds through these same functions) then finds the tools, the base and
podman's layers there, and its own build of the image is a few seconds of cached layers.

Cold, the base is the long part; the wheels download beside it (docs/kubernetes.md, "How it is tested",
has the measured phases).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/book-repricer:ci"
SUITE = "bookworm"
# The test's base: Debian's python3 (3.11) with venv, passwd for the Containerfile's useradd and
# libstdc++6 for the C++ in pyzmq's and numpy's wheels (manylinux wheels leave it to the system), on the
# essential set only: no apt and none of the other Priority:required packages (minbase), as nothing in
# the image installs packages. No manuals, translations or docs (their copyright files stay). force-unsafe-io:
# dpkg does not sync every file (the tarball is renamed into place only when whole).
BASE_RECIPE = ("--variant=essential", "--include=python3,python3-venv,passwd,libstdc++6",
               "--dpkgopt=force-unsafe-io", '--aptopt=Acquire::Languages "none"',
               "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
               "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright")
# Named after its recipe: a changed recipe is a new image and tarball, never a stale one taken for it.
BASE_NAME = f"debian-py-{SUITE}-{hashlib.sha256(repr((SUITE, BASE_RECIPE)).encode()).hexdigest()[:10]}"
BASE_IMAGE = f"localhost/debian-py:{BASE_NAME.removeprefix('debian-py-')}"
IMAGE_PYTHON = "3.11"  # the base's (bookworm's python3): the wheels are for it, whatever Python runs the test
TOOLS = ("podman", "runc", "mmdebstrap", "netavark", "aardvark-dns")
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""


def default_cache() -> Path:
    """Where the base tarball and the wheels are kept between runs: on the machine, never in the repository."""
    return Path(os.environ.get("REPRICER_DEPLOY_CACHE", "/var/cache/book-repricer-deploy"))


def say(message: str) -> None:
    print(f"deploy: {message}", flush=True)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Times one phase and says how long it took: the run's profile, read for docs/kubernetes.md."""
    started = time.monotonic()
    yield
    say(f"phase {name}: {time.monotonic() - started:.1f}s")


def run(*cmd: str, check: bool = True, timeout: float = 600, quiet: bool = False,
        **kw: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}... exited {result.returncode}:\n{result.stderr[-3000:]}")
    if not quiet and result.returncode != 0:
        say(f"({' '.join(cmd[:4])} exited {result.returncode}: {result.stderr.strip()[-300:]})")
    return result


def podman(*args: str, check: bool = True, timeout: float = 600) -> str:
    return run("podman", *args, check=check, timeout=timeout, quiet=not check).stdout


def ensure_tools() -> None:
    """podman and mmdebstrap from Debian's packages (as .ci/run installs chromium), and podman's
    engine settings for this machine: runc, and ulimits it may set (the issue's facts)."""
    if shutil.which("podman") is None or shutil.which("mmdebstrap") is None:
        if os.geteuid() != 0:
            raise RuntimeError("podman and mmdebstrap are missing and this is not root: cannot install them")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        with phase("apt-get install " + " ".join(TOOLS)):
            run("apt-get", "update", "-q", env=env)
            run("apt-get", "install", "-y", "-q", *TOOLS, env=env)  # recommends: catatonit, for the pause image
    conf = Path("/etc/containers/containers.conf")
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF, encoding="utf-8")
    elif 'runtime = "runc"' not in conf.read_text(encoding="utf-8"):
        say(f"warning: {conf} does not choose runc; podman may fail with 'OCI permission denied'")


def image_exists(image: str) -> bool:
    return run("podman", "image", "exists", image, check=False, quiet=True).returncode == 0


def ensure_base(cache: Path, rebuild: bool) -> None:
    """The base image, imported from the cached tarball, which mmdebstrap makes when it is missing."""
    if not rebuild and image_exists(BASE_IMAGE):
        return
    tarball = cache / f"{BASE_NAME}.tar"
    if rebuild or not tarball.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f"{BASE_NAME}.partial.tar"  # mmdebstrap takes the format from the name's suffix
        with phase("mmdebstrap"):
            run("mmdebstrap", "--format=tar", *BASE_RECIPE, SUITE, str(partial), timeout=900)
        partial.rename(tarball)
    with phase("podman import"):
        podman("import", str(tarball), BASE_IMAGE)


def _pip(cache: Path) -> list[str]:
    """A pip to download with: this Python's, else one in a venv of the cache (Debian's python3 has none)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    venv = cache / "pip-venv"
    if not (venv / "bin" / "pip").exists():
        run(sys.executable, "-m", "venv", str(venv))
    return [str(venv / "bin" / "pip"), "--disable-pip-version-check"]


def download_wheels(cache: Path) -> Path:
    """The locked wheels (hashes checked) in ``cache/wheels``: offline from there when it holds them all,
    else from the package index."""
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    locks = ["-r", str(REPO / "deploy/requirements.lock"), "-r", str(REPO / "deploy/build-requirements.lock")]
    with phase("wheels"):
        download = [*_pip(cache), "download", "-q", "--only-binary", ":all:", "--require-hashes",
                    "--python-version", IMAGE_PYTHON, "--implementation", "cp", "--dest", str(wheels), *locks]
        if run(*download, "--no-index", "--find-links", str(wheels), check=False, quiet=True).returncode != 0:
            run(*download)
    return wheels


def build_image(wheels: Path, work: Path, background: bool = False) -> float:
    """Build the image from a copy of the project's files (tracked or new, not ignored) and the locked
    wheels; returns the seconds it took. Built before (by --prepare), its layers are podman's cache.

    ``background``: the build's RUN steps get the least CPU share (``--cpu-shares 2``). runc starts
    each in a session and a cgroup of its own, where the nice value of the build's session no longer
    ranks it below pytest's."""
    context = work / "context"
    files = run("git", "ls-files", "-co", "--exclude-standard", cwd=REPO).stdout.splitlines()
    for name in files:
        source = REPO / name
        if source.is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    for wheel in wheels.glob("*.whl"):
        shutil.copy2(wheel, context / "deploy" / "wheels" / wheel.name)
    started = time.monotonic()
    with phase("podman build"):
        podman("build", "-q", *(["--cpu-shares", "2"] if background else []), "-f", "deploy/Containerfile",
               "--build-arg", f"BASE={BASE_IMAGE}",
               "--build-arg", "PIP_NO_INDEX=1", "-t", IMAGE, str(context), timeout=900)
    return time.monotonic() - started


def image_size(image: str) -> int:
    return int(podman("image", "inspect", image, "--format", "{{.Size}}").strip())


def prepare(cache: Path, rebuild_base: bool = False) -> None:
    """Everything the container test builds, the wheels downloading while the tools and the base are
    made; in the background of pytest (.ci/run), so the image's RUN steps yield the CPU too."""
    with tempfile.TemporaryDirectory(prefix="repricer-deploy-prepare-") as work, ThreadPoolExecutor(1) as pool:
        wheels = pool.submit(download_wheels, cache)
        ensure_tools()
        ensure_base(cache, rebuild_base)
        build_image(wheels.result(), Path(work), background=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=default_cache(),
                        help="where the base tarball and the wheels are kept between runs (never committed)")
    parser.add_argument("--rebuild-base", action="store_true", help="build the base image anew")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        prepare(args.cache, args.rebuild_base)
    except Exception as exc:  # the container test after pytest builds again and reports it in full
        say(f"prepare failed after {time.monotonic() - started:.0f}s: {exc}"[:3000])
        return 1
    say(f"prepared in {time.monotonic() - started:.0f}s: {IMAGE} FROM {BASE_IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
