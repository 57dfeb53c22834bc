"""Grants, revocations and masking-policy changes take effect on the consumer's next run, through
projections the platform makes, without the producer re-materializing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from mesh_platform.governance.audit import AuditLog
from mesh_platform.project.locations import MeshHome
from tests.conftest import MaterializedMesh, materialize

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grants")]

ACCOUNTS = "patients.patient_accounts"


@pytest.fixture(scope="module")
def mm(tmp_path_factory: pytest.TempPathFactory) -> MaterializedMesh:
    mm = materialize(tmp_path_factory.mktemp("grants"))
    assert mm.run.returncode == 0, mm.run.stderr  # type: ignore[attr-defined]
    return mm


@contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    original = path.read_text()
    assert old in original
    path.write_text(original.replace(old, new, 1))
    try:
        yield
    finally:
        path.write_text(original)


def _current(mm: MaterializedMesh, ref: str) -> dict:
    domain, product = ref.split(".")
    return json.loads((mm.home / "products" / domain / product / "current.json").read_text())


def _journey_emails(mm: MaterializedMesh) -> list[str]:
    with duckdb.connect() as con:
        path = _current(mm, "patient_360.patient_journey")["path"]
        return [r[0] for r in con.execute(f"select email from read_parquet('{path}')").fetchall() if r[0]]


def _projections(mm: MaterializedMesh) -> list[Path]:
    return sorted((mm.home / "governed" / "patient_360" / "patients" / "patient_accounts").glob("*.parquet"))


def test_a_second_read_of_the_same_version_reuses_its_projection(mm: MaterializedMesh) -> None:
    before = _projections(mm)
    assert len(before) == 1
    stamp = before[0].stat().st_mtime_ns
    mm.mesh("run", "--domain", "patient_360", check=True)
    assert _projections(mm) == before and before[0].stat().st_mtime_ns == stamp


def test_a_pii_grant_applies_on_the_next_run_without_the_producer(mm: MaterializedMesh) -> None:
    producer = _current(mm, ACCOUNTS)["version"]
    assert all(e.startswith("tok_") for e in _journey_emails(mm))
    descriptor = mm.root / "domains" / "patients" / "domain.yaml"
    with edited(descriptor, "pii_readers: []", "pii_readers: [patient_360]"):
        mm.mesh("run", "--domain", "patient_360", check=True)
        assert all("@" in e for e in _journey_emails(mm))
        raw_reads = [r for r in AuditLog(MeshHome(mm.home)).records() if r["event"] == "raw_read"]
        assert raw_reads and raw_reads[-1]["consumer"] == "patient_360" and raw_reads[-1]["product"] == ACCOUNTS
    mm.mesh("run", "--domain", "patient_360", check=True)  # revoked again
    assert all(e.startswith("tok_") for e in _journey_emails(mm))
    assert _current(mm, ACCOUNTS)["version"] == producer
    assert len(_projections(mm)) == 1  # the unmasked projection is gone


def test_a_masking_policy_change_applies_on_the_next_run(mm: MaterializedMesh) -> None:
    descriptor = mm.root / "domains" / "patients" / "domain.yaml"
    before = _projections(mm)
    old = "{name: email, type: string, description: Contact email, classification: pii, mask: token}"
    with edited(descriptor, old, old.replace("mask: token", "mask: redact")):
        mm.mesh("run", "--domain", "patient_360", check=True)
        assert set(_journey_emails(mm)) == {"[redacted]"}
        assert _projections(mm) != before  # a new projection for the new policy
    mm.mesh("run", "--domain", "patient_360", check=True)
    assert all(e.startswith("tok_") for e in _journey_emails(mm))


def test_a_grant_revoked_while_definitions_are_loaded_is_refused_when_the_step_runs(
    mm: MaterializedMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code server keeps the definitions it loaded; the step authorizes again and refuses."""
    from dagster import DagsterInstance

    from mesh_platform.defs.domain_definitions import domain_definitions
    from mesh_platform.project.locations import MeshProject
    from mesh_platform.project.mesh import Mesh

    monkeypatch.setenv("MESH_PROJECT_DIR", str(mm.root))
    monkeypatch.setenv("MESH_HOME", str(mm.home))
    job = domain_definitions("patient_360", Mesh.load(MeshProject.discover(mm.root))).resolve_job_def("patient_360")
    published = _current(mm, "patient_360.patient_journey")["version"]
    descriptor = mm.root / "domains" / "patients" / "domain.yaml"
    with edited(descriptor, "consumers: [patient_360, scheduling]", "consumers: [scheduling]"):
        result = job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    refused = [r for r in AuditLog(MeshHome(mm.home)).records() if r["event"] == "refused"]
    assert refused[-1]["consumer"] == "patient_360" and refused[-1]["product"] == ACCOUNTS
    assert refused[-1]["rule"] == "access-granted" and refused[-1]["run_id"] == result.run_id
    assert _projections(mm) == []  # withdrawn with the grant
    assert _current(mm, "patient_360.patient_journey")["version"] == published
