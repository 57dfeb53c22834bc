"""A product MESH_HOME stores that no descriptor declares (renamed or removed) is reported by `mesh
products`, never listed as a product, and `--prune` archives it without deleting anything; a domain
whose descriptor cannot be read is not judged. (Against a running UI: tests/test_ui_reload.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from mesh_platform.scaffold.testing import DomainWorkbench
from tests.conftest import copy_project, mesh_env, run_mesh_cli


def test_a_renamed_product_is_reported_and_pruned_into_the_archive(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    wb = DomainWorkbench(root, "site_operations", tmp_path / "work")
    wb.publish("pharmacy.sites", [{"site_id": "S1", "daily_capacity": 3}])
    wb.publish("patients.patient_consent", [{"patient_id": "P1", "consent_research": True}])
    descriptor = root / "domains/pharmacy/domain.yaml"
    descriptor.write_text(descriptor.read_text().replace("- name: sites\n", "- name: site_register\n"))
    env = mesh_env(root, wb.home.path)

    listed = run_mesh_cli("products", env=env, cwd=root, check=True)
    assert "pharmacy.sites" not in listed.stdout.replace("pharmacy.site_register", "")
    assert "warning: pharmacy.sites is stored (1 version(s)" in listed.stderr
    assert "`mesh products --prune pharmacy.sites`" in listed.stderr and "patients." not in listed.stderr
    as_json = json.loads(run_mesh_cli("products", "--json", env=env, cwd=root, check=True).stdout)
    assert "sites" not in {p["name"] for p in as_json if p["domain"] == "pharmacy"}

    # refused, and nothing changes: a declared product, a name with nothing stored, a bad combination
    declared = run_mesh_cli("products", "--prune", "patients.patient_consent", env=env, cwd=root)
    assert declared.returncode == 1 and "is declared in domains/patients/domain.yaml" in declared.stderr
    nothing = run_mesh_cli("products", "--prune", "pharmacy.nothing_here", env=env, cwd=root)
    assert nothing.returncode == 2 and "nothing is stored under pharmacy.nothing_here" in nothing.stderr
    both = run_mesh_cli("products", "pharmacy.site_register", "--prune", "pharmacy.sites", env=env, cwd=root)
    assert both.returncode == 2 and (wb.home.path / "products/pharmacy/sites/current.json").exists()

    pruned = run_mesh_cli("products", "--prune", "pharmacy.sites", env=env, cwd=root, check=True)
    assert "pruned pharmacy.sites: its 1 version(s) moved to" in pruned.stderr
    (archived,) = (wb.home.path / "archive/products/pharmacy/sites").iterdir()
    assert len(list(archived.glob("*.parquet"))) == 1 and (archived / "current.json").exists()
    assert not (wb.home.path / "products/pharmacy/sites").exists()
    assert "warning" not in run_mesh_cli("products", env=env, cwd=root, check=True).stderr


def test_a_domain_whose_descriptor_cannot_be_read_is_left_out_not_orphaned(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    wb = DomainWorkbench(root, "site_operations", tmp_path / "work")
    wb.publish("patients.patient_consent", [{"patient_id": "P1", "consent_research": True}])
    (root / "domains/patients/domain.yaml").write_text("domain: patients\nowner: [broken\n")
    env = mesh_env(root, wb.home.path)
    listed = run_mesh_cli("products", env=env, cwd=root, check=True)
    assert "warning: patients is left out" in listed.stderr and "is stored" not in listed.stderr
    refused = run_mesh_cli("products", "--prune", "patients.patient_consent", env=env, cwd=root)
    assert refused.returncode == 1 and "has problems" in refused.stderr
    assert (wb.home.path / "products/patients/patient_consent/current.json").exists()
