"""The README says what the code does: its lineage diagram is the one `mesh lineage` draws."""

from __future__ import annotations

from pathlib import Path

from mesh_platform.lineage.readme_diagram import lineage_block, readme_lineage
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lineage_diagram_is_current() -> None:
    expected = lineage_block(Mesh.load(MeshProject.discover(ROOT)))
    assert readme_lineage(ROOT / "README.md") == expected, "run `make docs` and commit README.md"


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make demo" in quick_start and "MESH_NO_UI=1 make demo" in quick_start and "make test" in quick_start
