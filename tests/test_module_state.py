"""No module-level mutable state in the product's packages: state is passed in, never kept in a module
(the way ``transport.sockets._security`` once was). Checked on the source, so it holds for code not
yet written too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("actors", "transport", "repricer_supervisor")
# Calls that make a mutable object when assigned at module level.
MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "deque", "Counter", "OrderedDict", "bytearray",
                 "Event", "Lock", "Queue"}


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py"))


def problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    assigned: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"line {node.lineno}: 'global {', '.join(node.names)}'")
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                if target.id in assigned and target.id != "__all__":
                    found.append(f"line {node.lineno}: {target.id} assigned twice (module state)")
                assigned[target.id] = node.lineno
            else:
                found.append(f"line {node.lineno}: assignment into another object at import")
        if value is None:
            continue
        if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
            found.append(f"line {node.lineno}: a mutable {type(value).__name__} at module level")
        elif isinstance(value, ast.Call):
            func = value.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in MUTABLE_CALLS:
                found.append(f"line {node.lineno}: a mutable {name}() at module level")
    # Nobody sets an attribute of an imported module (``runtime.liveness = ...``).
    imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id in imported):
                    found.append(f"line {node.lineno}: sets {target.value.id}.{target.attr} (another module's state)")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_level_mutable_state(path: Path) -> None:
    assert problems(path) == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom x import runtime\n_cache = {}\nseen = set()\ncount = 0\ncount = 1\n"
                      "def f():\n    global count\n    runtime.liveness = 1\n")
    found = problems(sample)
    assert len(found) == 5, found
