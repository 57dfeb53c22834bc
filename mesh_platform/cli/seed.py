"""`mesh seed`: deterministic synthetic source data with known defects."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import check_number, err, load_mesh, plain
from mesh_platform.text import counted

MIN_SCALE, MAX_SCALE = 0.0001, 1000.0  # 10 patients; about a billion source rows


def seed(
    scale: float = typer.Option(
        1.0, "--scale", help=f"1 = about 100k patients and 1M source rows; linear ({MIN_SCALE:g} to {MAX_SCALE:g})."
    ),
    seed: int = typer.Option(42, "--seed", min=0, help="Random seed: same seed and scale, same bytes."),
) -> None:
    """Write synthetic source data (with documented defects) into MESH_HOME."""
    from devtools.seed import seed as generate

    check_number("--scale", scale, MIN_SCALE, MAX_SCALE)
    mesh = load_mesh()
    mesh.project.home.ensure()
    with err.status("seeding…"):
        report = generate(mesh.project.home.path, scale=scale, seed=seed)
    totals = report["totals"]
    defects = ", ".join(f"{k}={v}" for k, v in totals["defects"].items())
    seeded = counted(totals["rows"], "source row")
    err.print(plain(f"seeded {seeded} into {mesh.project.home.path} (defects: {defects})"))


def register(app: typer.Typer) -> None:
    app.command("seed")(seed)
