"""The README's generated sections, each between `<!-- NAME:start -->` and `<!-- NAME:end -->`: the
lineage diagram (a mermaid block rendered from the mesh, kept current by scaffolding and by `make docs`,
`devtools/readme.py`) and the performance table (`python -m bench`)."""

from __future__ import annotations

import re
from pathlib import Path

from mesh_platform.lineage import lineage, to_mermaid
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh

START, END = "<!-- lineage:start -->", "<!-- lineage:end -->"


def markers(name: str) -> tuple[str, str]:
    """The comments that open and close the README's generated section `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _section(name: str) -> re.Pattern[str]:
    start, end = markers(name)
    return re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)


def marked_section(readme: Path, name: str) -> str:
    """The generated section `name` of `readme`, its markers included."""
    match = _section(name).search(readme.read_text())
    if match is None:
        raise ValueError(f"{readme} has no {' ... '.join(markers(name))} block")
    return match.group(0)


def with_section(text: str, name: str, body: str) -> str:
    """`text` with its generated section `name` replaced by `body` (between the same markers)."""
    start, end = markers(name)
    if _section(name).search(text) is None:
        raise ValueError(f"no {start} ... {end} block to replace")
    return _section(name).sub(lambda _: f"{start}\n{body.strip()}\n{end}", text)


def lineage_block(mesh: Mesh) -> str:
    return f"{START}\n```mermaid\n{to_mermaid(lineage(mesh))}```\n{END}"


def readme_lineage(readme: Path) -> str:
    return marked_section(readme, "lineage")


def update(root: Path) -> bool:
    readme = root / "README.md"
    text = readme.read_text()
    new = _section("lineage").sub(lambda _: lineage_block(Mesh.load(MeshProject.discover(root))), text)
    readme.write_text(new)
    return new != text
