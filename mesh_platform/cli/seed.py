"""`mesh seed`: deterministic synthetic source data with known defects."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import err, fail, load_mesh


def seed(
    scale: float = typer.Option(1.0, "--scale", help="1 = about 100k patients and 1M source rows; linear."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed and scale, same bytes."),
) -> None:
    """Write synthetic source data (with documented defects) into MESH_HOME."""
    from mesh_platform.seed import seed as generate

    if scale <= 0:
        fail(f"--scale must be positive, got {scale}")
    mesh = load_mesh()
    mesh.project.home.ensure()
    with err.status("seeding…"):
        report = generate(mesh.project.home.path, scale=scale, seed=seed)
    totals = report["totals"]
    defects = ", ".join(f"{k}={v}" for k, v in totals["defects"].items())
    err.print(f"seeded {totals['rows']:,} source rows into {mesh.project.home.path} (defects: {defects})")


def register(app: typer.Typer) -> None:
    app.command("seed")(seed)
