"""The whole mesh, seeded small and run through `mesh run` on a real Dagster instance."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import MaterializedMesh, run_spans

pytestmark = [pytest.mark.slow]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("duckdb", marks=pytest.mark.xdist_group("e2e")),
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.xdist_group("e2e_pg")]),
    ],
)
def materialized(request: pytest.FixtureRequest) -> MaterializedMesh:
    """Every test here runs against both warehouses: DuckDB files and a PostgreSQL server."""
    return request.getfixturevalue("materialized_pg" if request.param == "postgres" else "materialized_duckdb")


def test_mesh_run_materializes_every_product(materialized) -> None:
    run = materialized.run
    assert run.returncode == 0, run.stdout + run.stderr
    mesh = Mesh.load(MeshProject.discover(materialized.root))
    for descriptor, product in mesh.products():
        assert product.name in run.stdout, f"summary table lacks {descriptor.domain}.{product.name}"
    assert "checks" in run.stdout


def test_catalog_reports_published_products(materialized) -> None:
    entries = json.loads(materialized.mesh("products", "--json", check=True).stdout)
    assert {e["ref"] for e in entries} >= {"patients.patient_accounts", "patient_360.patient_journey"}
    for entry in entries:
        assert entry["owner"].startswith("team:")
        assert entry["value"]
        assert entry["status"]["last_run"] == "published", entry
        assert entry["status"]["rows"] > 0
        assert entry["status"]["checks_passed"] > 0
        assert all(c["classification"] in ("public", "internal", "pii") for c in entry["columns"])


def test_runs_are_recorded_in_the_dagster_instance(materialized) -> None:
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    instance = DagsterInstance.from_config(str(materialized.home / "dagster"))
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
    assert {r.job_name for r in runs} >= {
        "patients",
        "scheduling",
        "pharmacy",
        "immunizations",
        "patient_360",
        "site_operations",
    }


def test_independent_domains_run_at_once_consumers_after_their_producers(materialized) -> None:
    """`mesh run` runs two domains at a time by default (`--jobs`), never a consumer before its producers."""
    spans = run_spans(materialized.home)
    mesh = Mesh.load(MeshProject.discover(materialized.root))
    for domain, descriptor in mesh.descriptors.items():
        for producer in descriptor.consumed_domains:
            assert spans[producer][1] <= spans[domain][0], f"{domain} started before {producer} ended"
    at_once = max(sum(1 for s, e in spans.values() if s <= start < e) for start, _ in spans.values())
    assert at_once == 2, spans


def test_lineage_crosses_domains(materialized) -> None:
    graph = json.loads(materialized.mesh("lineage", "--format", "json", check=True).stdout)
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert ("patients.patient_accounts", "patient_360.patient_journey") in edges  # dbt -> dbt
    assert ("scheduling.appointments", "patient_360.patient_journey") in edges  # python -> dbt
    assert ("pharmacy.vaccine_stock", "immunizations.administered_doses") in edges  # python -> dbt
    assert ("immunizations.test_results", "site_operations.site_daily_capacity") in edges  # dbt -> python
    mermaid = materialized.mesh("lineage", check=True).stdout
    assert (
        mermaid.startswith("flowchart LR") and "patients__patient_accounts --> patient_360__patient_journey" in mermaid
    )


def test_governed_read_masks_pii_for_consumers(materialized) -> None:
    as_consumer = json.loads(
        materialized.mesh(
            "read", "patients.patient_accounts", "--as", "patient_360", "--limit", "0", "--json", check=True
        ).stdout
    )
    as_owner = json.loads(
        materialized.mesh(
            "read", "patients.patient_accounts", "--as", "patients", "--limit", "0", "--json", check=True
        ).stdout
    )
    assert len(as_consumer) == len(as_owner) > 0
    raw = {r["patient_id"]: r for r in as_owner}
    for row in as_consumer:
        original = raw[row["patient_id"]]
        assert row["email"] is None or (row["email"].startswith("tok_") and row["email"] != original["email"])
        assert row["first_name"] in (None, "[redacted]")
        assert row["zip"] is None or row["zip"].endswith("XX")
    assert any("@" in (r["email"] or "") for r in as_owner)


def test_read_refused_for_a_domain_that_does_not_consume(materialized) -> None:
    proc = materialized.mesh("read", "patients.patient_accounts", "--as", "pharmacy")
    assert proc.returncode == 1
    assert "pharmacy does not consume patients.patient_accounts" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_products_are_written_once_into_the_published_file(materialized) -> None:
    """A product is built straight into the file that is audited and then published: on DuckDB the
    domain's warehouse reads it as a view over that version, and no staged file is left behind."""
    mesh = Mesh.load(MeshProject.discover(materialized.root))
    assert not list((materialized.home / "staging").glob("*/*"))  # no step left a folder
    on_duckdb = materialized.env.get("MESH_WAREHOUSE", "duckdb") == "duckdb"
    for descriptor, product in mesh.products():
        folder = materialized.home / "products" / descriptor.domain / product.name
        current = json.loads((folder / "current.json").read_text())
        assert Path(current["path"]).exists() and not list(folder.glob(".*.tmp"))
        if not on_duckdb:
            continue
        with duckdb.connect(
            str(materialized.home / "warehouse" / f"{descriptor.domain}.duckdb"), read_only=True
        ) as con:
            view = con.execute(
                "select sql from duckdb_views() where schema_name = 'main' and view_name = ?", [product.name]
            ).fetchall()
            assert view and f"read_parquet('{current['path']}')" in view[0][0], (product.name, view)
            assert con.execute(f'select count(*) from main."{product.name}"').fetchone()[0] == current["rows"]


def test_quarantine_lists_rejected_records(materialized) -> None:
    records = json.loads(materialized.mesh("quarantine", "--json", check=True).stdout)
    reasons = {r["reason"] for r in records}
    assert {"null_key", "duplicate_key", "unknown_code", "malformed_json"} <= reasons
    assert all(r["source_file"] and r["source_line"] for r in records)


def test_quarantine_holds_exactly_the_injected_defects(materialized) -> None:
    """Every defect the seeder recorded is quarantined at its file and line, with its reason."""
    report = json.loads((materialized.home / "sources" / "defects.json").read_text())
    expected = {
        (file, kind, line)
        for file, info in report["files"].items()
        for kind, defect in info["defects"].items()
        for line in defect["lines"]
    }
    records = json.loads(materialized.mesh("quarantine", "--json", check=True).stdout)
    actual = {(r["source_file"], r["reason"], r["source_line"]) for r in records}
    assert actual == expected


def test_records_in_equal_published_plus_quarantined(materialized) -> None:
    """Nothing dropped silently: each source file's rows are loaded or quarantined."""
    import duckdb

    report = json.loads((materialized.home / "sources" / "defects.json").read_text())
    quarantined = json.loads(materialized.mesh("quarantine", "--json", check=True).stdout)
    for domain, table in [
        ("patients", "raw_patients"),
        ("pharmacy", "raw_sites"),
        ("pharmacy", "raw_vaccine_lots"),
        ("immunizations", "raw_doses"),
        ("immunizations", "raw_test_results"),
    ]:
        with duckdb.connect(str(materialized.home / "warehouse" / f"{domain}.duckdb"), read_only=True) as con:
            (file,) = con.execute(f"select distinct _source_file from main.{table}").fetchone()
            loaded = con.execute(f"select count(*) from main.{table}").fetchone()[0]
        held = sum(1 for r in quarantined if r["source_file"] == file)
        assert loaded + held == report["files"][file]["rows"], (domain, table)
    with duckdb.connect(str(materialized.home / "warehouse" / "scheduling.duckdb"), read_only=True) as con:
        events = con.execute("select count(*) from main.appointment_events").fetchone()[0]
    lines = sum(info["rows"] for f, info in report["files"].items() if f.startswith("landing/"))
    held = sum(1 for r in quarantined if r["source_file"].startswith("landing/"))
    assert events + held + report["totals"]["redelivered_events"] == lines


def _read(materialized, ref: str, consumer: str) -> list[dict]:
    out = materialized.mesh("read", ref, "--as", consumer, "--limit", "0", "--json", check=True).stdout
    return json.loads(out)


def test_every_pii_value_is_masked_for_unauthorised_consumers(materialized) -> None:
    mesh = Mesh.load(MeshProject.discover(materialized.root))
    for descriptor, product in mesh.products():
        pii = [c.name for c in product.columns if c.classification == "pii"]
        consumers = [
            d
            for d, desc in mesh.descriptors.items()
            if f"{descriptor.domain}.{product.name}" in desc.consumes and d not in product.access.pii_readers
        ]
        if not pii or not consumers:
            continue
        raw = _read(materialized, f"{descriptor.domain}.{product.name}", descriptor.domain)
        raw_values = {(c, str(r[c])) for r in raw for c in pii if r[c] is not None}
        for consumer in consumers:
            seen = _read(materialized, f"{descriptor.domain}.{product.name}", consumer)
            assert len(seen) == len(raw)
            leaked = {(c, str(r[c])) for r in seen for c in pii if r[c] is not None} & raw_values
            # a year-truncated date can equal a real Jan 1st birthday; nothing else may match
            assert all(product.column(c).mask_policy == "year" for c, _ in leaked), leaked


def test_grant_and_revoke_change_reads_without_rematerializing(materialized) -> None:
    path = materialized.root / "domains" / "patients" / "domain.yaml"
    original = path.read_text()
    version = json.loads((materialized.home / "products/patients/patient_accounts/current.json").read_text())
    owner_view = {r["patient_id"]: r["email"] for r in _read(materialized, "patients.patient_accounts", "patients")}
    try:
        path.write_text(original.replace("pii_readers: []", "pii_readers: [patient_360]", 1))
        granted = _read(materialized, "patients.patient_accounts", "patient_360")
        assert {r["patient_id"]: r["email"] for r in granted} == owner_view
    finally:
        path.write_text(original)
    revoked = _read(materialized, "patients.patient_accounts", "patient_360")
    assert all(r["email"] is None or r["email"].startswith("tok_") for r in revoked)
    after = json.loads((materialized.home / "products/patients/patient_accounts/current.json").read_text())
    assert after["version"] == version["version"]


def test_governed_reads_are_audited_in_mesh_and_dagster(materialized) -> None:
    records = json.loads(materialized.mesh("audit", "--consumer", "patient_360", "--json", check=True).stdout)
    current = json.loads((materialized.home / "products/patients/patient_accounts/current.json").read_text())
    run_reads = [r for r in records if r["product"] == "patients.patient_accounts" and r["run_id"]]
    assert run_reads and run_reads[-1]["version"] == current["version"]
    assert run_reads[-1]["masked_columns"]["email"] == "token"

    from dagster import AssetKey, DagsterInstance

    instance = DagsterInstance.from_config(str(materialized.home / "dagster"))
    event = instance.get_latest_materialization_event(AssetKey(["patient_360", "patient_journey"]))
    reads = event.asset_materialization.metadata["mesh/governed_reads"].value
    assert {r["product"] for r in reads} == {
        "patients.patient_accounts",
        "scheduling.appointments",
        "immunizations.administered_doses",
        "immunizations.test_results",
    }


def test_quarantine_masks_pii_except_for_the_owner(materialized) -> None:
    masked = json.loads(materialized.mesh("quarantine", "patients.patient_accounts", "--json", check=True).stdout)
    owner = json.loads(
        materialized.mesh("quarantine", "patients.patient_accounts", "--as", "patients", "--json", check=True).stdout
    )
    assert len(masked) == len(owner) > 0
    assert all("@example" not in r["record"] for r in masked)
    assert any("@example" in r["record"] for r in owner)


def test_quarantine_is_kept_per_product(materialized) -> None:
    report = json.loads((materialized.home / "sources" / "defects.json").read_text())
    injected = sum(d["count"] for d in report["files"]["sources/immunizations/test_results.csv"]["defects"].values())
    records = json.loads(materialized.mesh("quarantine", "immunizations.test_results", "--json", check=True).stdout)
    assert {r["asset"] for r in records} == {"raw_test_results"}
    assert len(records) == injected
