"""Each domain ships its own tests (`domains/<d>/test_<d>.py`), and what `mesh new-domain` scaffolds
runs green and catches a broken product."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.scaffold.new_domain import new_domain
from mesh_platform.scaffold.testing import DomainWorkbench
from tests.conftest import ROOT, copy_project, mesh_env

PYTEST = str(Path(sys.executable).with_name("pytest"))


def test_every_domain_ships_its_own_tests() -> None:
    """The README's promise: each domain has `test_<domain>.py`, with tests that run its code."""
    mesh = Mesh.load(MeshProject.discover(ROOT))
    for domain in mesh.project.domain_names():
        tests = mesh.project.domain_dir(domain) / f"test_{domain}.py"
        assert tests.exists(), f"{domain} ships no {tests.relative_to(ROOT)}"
        text = tests.read_text()
        assert "DomainWorkbench(ROOT" in text and len(re.findall(r"^def test_", text, re.M)) >= 3, tests


def test_a_product_column_the_descriptor_does_not_declare_is_refused_by_publish(tmp_path: Path) -> None:
    wb = DomainWorkbench(ROOT, "site_operations", tmp_path)
    with pytest.raises(KeyError, match=r"pharmacy\.sites declares no column capacity"):
        wb.publish("pharmacy.sites", [{"site_id": "S1", "capacity": 3}])


def test_a_consumed_product_that_is_not_granted_is_not_readable(tmp_path: Path) -> None:
    """The workbench reads through the governed read: it refuses what a run would refuse."""
    root = copy_project(tmp_path / "project")
    mesh = Mesh.load(MeshProject.discover(root))
    new_domain(mesh, "outreach", "team:x", ["scheduling.appointments"], "python", "example")
    wb = DomainWorkbench(root, "outreach", tmp_path / "work")
    wb.publish("scheduling.appointments", [{"appointment_id": "A1"}])
    with pytest.raises(Exception, match="not granted to outreach"):
        wb.build()


def _pytest(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTEST, "-p", "no:cacheprovider", "-q", *args], cwd=root, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "consumes"), [("python", ["pharmacy.sites", "patients.patient_consent"]), ("dbt", [])]
)
def test_scaffolded_tests_pass_and_catch_a_broken_product(tmp_path: Path, kind: str, consumes: list[str]) -> None:
    root = copy_project(tmp_path / "project")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    env = mesh_env(root, tmp_path / "home")
    new_domain(Mesh.load(MeshProject.discover(root)), "outreach", "team:x", consumes, kind, "example")

    passed = _pytest(root, env, "-m", "not slow", "domains/outreach")
    assert passed.returncode == 0 and "2 passed" in passed.stdout, passed.stdout + passed.stderr

    # break the product the way a slip does: a count off by one, or a repeated item
    if kind == "python":
        code = root / "domains/outreach/assets.py"
        code.write_text(code.read_text().replace("count(*) as row_count", "count(*) + 1 as row_count"))
    else:
        model = root / "dbt_projects/outreach/models/marts/example.sql"
        model.write_text(model.read_text().replace("('item_3',", "('item_2',"))
    failed = _pytest(root, env, "-m", "not slow", "-k", "example", "domains/outreach")
    assert failed.returncode == 1 and "1 failed" in failed.stdout, failed.stdout + failed.stderr
