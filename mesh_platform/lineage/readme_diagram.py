"""The README's lineage diagram (a mermaid block between markers), rendered from the mesh and kept current
by scaffolding and by `make docs` (`devtools/readme.py`)."""

from __future__ import annotations

import re
from pathlib import Path

from mesh_platform.lineage import lineage, to_mermaid
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh

START, END = "<!-- lineage:start -->", "<!-- lineage:end -->"
BLOCK = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)


def lineage_block(mesh: Mesh) -> str:
    return f"{START}\n```mermaid\n{to_mermaid(lineage(mesh))}```\n{END}"


def readme_lineage(readme: Path) -> str:
    match = BLOCK.search(readme.read_text())
    if match is None:
        raise ValueError(f"{readme} has no {START} ... {END} block")
    return match.group(0)


def update(root: Path) -> bool:
    readme = root / "README.md"
    text = readme.read_text()
    new = BLOCK.sub(lambda _: lineage_block(Mesh.load(MeshProject.discover(root))), text)
    readme.write_text(new)
    return new != text
