"""The documentation holds together: every relative link in the README and docs/ points to a file that
exists (and, for a ``#section``, to a heading of that file), every Markdown table keeps its columns,
every page of docs/ is reachable from the README, and CI runs the very test command the README gives.

Plain text checks with GitHub's rules (heading anchors, table cells split on unescaped ``|``): no
Markdown library needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", REPO / "bench" / "README.md", *(REPO / "docs").glob("*.md")])

FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class Line:
    number: int
    text: str


def prose(page: Path) -> list[Line]:
    """The page's lines outside fenced code blocks (links and tables there are not rendered)."""
    lines: list[Line] = []
    fenced = False
    for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(text.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(Line(number, text))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline markup dropped, lower case, punctuation removed, spaces to
    hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose(page):
        match = HEADING.match(line.text)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """Every link and image target of the page, with its line, outside code."""
    return [(line.number, match.group(1)) for line in prose(page)
            for match in LINK.finditer(CODE_SPAN.sub("", line.text))]


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    problems: list[str] = []
    for number, target in links(page):
        if not relative(target):
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(root)}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: no heading #{fragment} in {resolved.relative_to(root)}")
    return problems


def cells(row: str) -> int:
    return len(CELL_SEPARATOR.split(row.strip().strip("|")))


def broken_tables(page: Path, root: Path = REPO) -> list[str]:
    """Rows whose cell count differs from their table's header (GitHub drops or pads them silently)."""
    problems: list[str] = []
    header: int | None = None
    for line in prose(page):
        if not line.text.lstrip().startswith("|"):
            header = None
            continue
        count = cells(line.text)
        if header is None:
            header = count
        elif count != header:
            problems.append(f"{page.relative_to(root)}:{line.number}: {count} cells, the header has {header}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_table_row_has_its_headers_cell_count(page: Path) -> None:
    assert broken_tables(page) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = REPO / "README.md"
    linked = {(readme.parent / target.partition("#")[0]).resolve() for _, target in links(readme) if relative(target)}
    assert [p.name for p in (REPO / "docs").glob("*.md") if p.resolve() not in linked] == []


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    command = readme[readme.index("# run the tests") + 1]
    assert command.startswith("python3 -m venv .venv") and "pytest" in command
    assert command in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """The checks themselves fail on a broken page (a missing file, a missing heading, a short row)."""
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n[ok](#a-title) [gone](missing.md) [bad](#no-such)\n`[code](x.md)`\n\n"
                    "| a | b |\n|---|---|\n| 1 \\| 2 | 3 |\n| 4 |\n\n```\n[fenced](y.md)\n| x |\n```\n",
                    encoding="utf-8")
    assert [p.split(": ", 1)[1] for p in broken_links(page, tmp_path)] == [
        "missing.md: no such file", "#no-such: no heading #no-such in page.md"]
    assert broken_tables(page, tmp_path) == ["page.md:9: 1 cells, the header has 2"]
