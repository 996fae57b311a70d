"""Who may import whom, checked on the source (every import statement, in functions and
``TYPE_CHECKING`` blocks too, and ``importlib.import_module`` of a constant name):

* an actor's package (``actors/<actor>/``) imports no other actor's package: code two actors share
  lives beside them in ``actors/`` (``actors/options.py``, ``actors/runtime.py``, ``actors/csv_rows.py``);
* ``transport`` (the wire: framing, sockets, limits) imports no actor and not the supervisor;
* the actors import nothing from ``repricer_supervisor`` (it starts them, never the other way round);
* no product code (``actors``, ``transport``, ``repricer_supervisor``, ``launcher.py``) imports ``tests``
  or ``bench``;
* no product module imports one that imports it back, directly or not (a cycle means one of the two
  holds what belongs to the other).

A crossing not yet undone is listed in ``CROSSINGS_LEFT``, with why.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.kinds import KINDS
from tests.helpers import REPO

PRODUCT = ("actors", "transport", "repricer_supervisor")
NOT_PRODUCT = ("tests", "bench")
ACTORS = frozenset(kind.package.removeprefix("actors.") for kind in KINDS)
# Crossings known and not yet undone (docs/limits.md), each with why. The test fails once one is gone,
# so that its entry goes too.
CROSSINGS_LEFT: frozenset[tuple[str, str]] = frozenset()  # none left


def product_files(root: Path) -> list[Path]:
    files = [path for package in PRODUCT for path in (root / package).rglob("*.py")]
    launcher = root / "launcher.py"
    return sorted([*files, launcher] if launcher.is_file() else files)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of everything ``path`` imports, in line order; ``from a import b``
    names ``a.b`` when ``b`` is a module or package of ``a``."""
    return sorted(_imports(root, path))


def _imports(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package (level 1), or its parent (2), ...
                base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
            for alias in node.names:
                sub = root.joinpath(*base.split("."), alias.name)
                yield node.lineno, (f"{base}.{alias.name}" if sub.is_dir() or sub.with_suffix(".py").is_file()
                                    else base)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def problems(root: Path, path: Path, actors: frozenset[str] = ACTORS) -> list[str]:
    """What ``path`` imports across a wall (``actors``: the names of the actors' packages)."""
    own = module_name(root, path).split(".")
    room = own[1] if own[0] == "actors" and len(own) > 2 and own[1] in actors else None
    found = []
    for line, module in imported(root, path):
        if (str(path.relative_to(root)), module) in CROSSINGS_LEFT:
            continue
        parts = module.split(".")
        if any(within(module, other) for other in NOT_PRODUCT):
            found.append(f"line {line}: product code imports {module} (tests and benchmarks are not shipped)")
        if own[0] == "transport" and (within(module, "actors") or within(module, "repricer_supervisor")):
            found.append(f"line {line}: transport imports {module} (the wire knows no actor)")
        if own[0] == "actors" and within(module, "repricer_supervisor"):
            found.append(f"line {line}: an actor imports {module} (the supervisor starts actors, not the reverse)")
        if room is not None and parts[0] == "actors" and len(parts) > 1 and parts[1] in actors - {room}:
            found.append(f"line {line}: actors.{room} imports another actor's package: {module} (shared code "
                         "goes beside the actors in actors/)")
    return found


@pytest.mark.parametrize("path", product_files(REPO), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_stay_in_their_rooms(path: Path) -> None:
    assert problems(REPO, path) == []


def import_cycle(root: Path) -> tuple[str, ...] | None:
    """A cycle of product modules importing each other, if any."""
    files = product_files(root)
    modules = {module_name(root, path) for path in files}
    graph = {module_name(root, path): {m for _, m in imported(root, path) if m in modules} for path in files}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return tuple(exc.args[1])
    return None


def test_no_product_module_imports_one_that_imports_it_back() -> None:
    assert import_cycle(REPO) is None


def test_every_crossing_left_is_still_there() -> None:
    for name, module in CROSSINGS_LEFT:
        assert module in {m for _, m in imported(REPO, REPO / name)}, f"{name} no longer imports {module}: " \
                                                                      "drop it from CROSSINGS_LEFT"


def test_the_actors_packages_are_the_actor_kinds() -> None:  # a new actor's package is checked too
    assert {p.name for p in (REPO / "actors").iterdir() if (p / "__main__.py").is_file()} == ACTORS


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    def write(name: str, text: str = "") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    sample = frozenset({"alpha", "beta"})  # the sample tree's actor packages
    for package in ("actors", "actors/alpha", "actors/beta", "actors/beta/sub", "transport",
                    "repricer_supervisor", "bench"):
        write(f"{package}/__init__.py")
    write("actors/shared.py")
    write("bench/driver.py")
    alpha = write("actors/alpha/logic.py",
                  "import actors.beta.x\n"
                  "from actors.beta import sub\n"
                  "from actors import beta\n"
                  "from ..beta.sub import thing\n"
                  "from actors.shared import fine\n"
                  "from . import fine_too\n"
                  "from actors import shared\n"
                  "def f():\n    from repricer_supervisor import launcher\n"
                  "    importlib.import_module('bench.driver')\n"
                  "if TYPE_CHECKING:\n    from tests.helpers import REPO\n")
    found = problems(tmp_path, alpha, sample)
    assert [p.split(":")[0] for p in found] == [
        "line 1", "line 2", "line 3", "line 4", "line 9", "line 10", "line 12"], found
    wire = write("transport/frames.py", "from actors.shared import x\nimport repricer_supervisor.policy\n")
    assert len(problems(tmp_path, wire, sample)) == 2
    own = write("actors/beta/sub/deep.py", "from actors.beta import other\nfrom ... import shared\n")
    assert problems(tmp_path, own, sample) == []
    launcher = write("launcher.py", "from repricer_supervisor import launcher\nimport bench\n")
    assert problems(tmp_path, launcher, sample) == [
        "line 2: product code imports bench (tests and benchmarks are not shipped)"]
    assert launcher in product_files(tmp_path)
    assert import_cycle(tmp_path) is None
    write("actors/beta/sub/deep.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
          "    from actors.beta.sub.back import Back\n")
    write("actors/beta/sub/back.py", "from actors.beta.sub import deep\n")
    assert set(import_cycle(tmp_path) or ()) == {"actors.beta.sub.deep", "actors.beta.sub.back"}
