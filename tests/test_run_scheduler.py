"""How many domains `mesh run` runs at once by default, and which it starts first."""

from __future__ import annotations

from pathlib import Path

from mesh_platform.mesh import Mesh
from mesh_platform.project import MeshHome, MeshProject
from mesh_platform.run_scheduler import consumer_counts, default_jobs
from mesh_platform.warehouse import MEMORY_LIMIT_ENV


def test_two_at_a_time_while_the_input_is_smaller_than_duckdbs_memory_limit(tmp_path: Path, monkeypatch) -> None:
    home = MeshHome(tmp_path)
    (home.sources / "patients").mkdir(parents=True)
    (home.landing / "appointments").mkdir(parents=True)
    (home.sources / "patients" / "patients.csv").write_bytes(b"x" * 600_000)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1MB")
    assert default_jobs(home) == 2
    (home.landing / "appointments" / "batch-1.jsonl").write_bytes(b"x" * 600_000)
    assert default_jobs(home) == 1  # 1.2 MB of input against a 1 MB limit


def test_the_domains_most_others_wait_on_start_first(project: Path) -> None:
    mesh = Mesh.load(MeshProject.discover(project))
    waits = consumer_counts(mesh, mesh.domains)
    # pharmacy feeds immunizations and site_operations, and patient_360 through immunizations
    assert waits["pharmacy"] == max(waits.values()) == 3
    assert waits["patient_360"] == waits["site_operations"] == 0
