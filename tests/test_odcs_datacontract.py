"""The exported contracts under a real ODCS client the project did not write: datacontract-cli.

datacontract-cli is installed in its own virtual environment (`.tools/datacontract/`, git-ignored,
made once and reused; never a dependency of the mesh), then `datacontract lint` and `datacontract
test` run on every product's export, unedited, against the current published version; its results
must be the platform's own check results, rule by rule.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from mesh_platform.checks.evaluate import run_contract
from mesh_platform.contracts.odcs_export import product_contract, product_suites
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import ROOT, MaterializedMesh, copy_project, mesh_env, run_mesh_cli
from tests.test_odcs import semantic

pytestmark = pytest.mark.slow

DATACONTRACT_SPEC = "datacontract-cli[duckdb,parquet,postgres]>=1.2,<1.3"
TOOLS = ROOT / ".tools"
PARQUET_TYPES = "Checking types in parquet files is not supported yet."


@dataclass(frozen=True)
class Datacontract:
    executable: Path
    version: str

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.executable), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )

    def test(self, contract: Path, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
        results = contract.with_suffix(".results.json")
        proc = self.run(
            "test", str(contract), "--output-format", "json", "--output", str(results), cwd=contract.parent, env=env
        )
        assert results.exists(), proc.stdout + proc.stderr
        return proc, json.loads(results.read_text())


def _install(venv: Path) -> None:
    uv = shutil.which("uv") or (TOOLS / "bin" / "uv")
    if Path(uv).exists():
        subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=600)
        install = [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), DATACONTRACT_SPEC]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
        install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", DATACONTRACT_SPEC]
    subprocess.run(install, check=True, timeout=1200)


@pytest.fixture(scope="session")
def datacontract() -> Iterator[Datacontract]:
    """datacontract-cli 1.2.x in `.tools/datacontract/`, installed from the package index once."""
    venv, marker = TOOLS / "datacontract", TOOLS / "datacontract" / ".mesh-spec"
    TOOLS.mkdir(exist_ok=True)
    with open(TOOLS / "datacontract.lock", "w") as lock:  # one installer at a time (xdist workers)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text() == DATACONTRACT_SPEC):
            shutil.rmtree(venv, ignore_errors=True)
            _install(venv)
            marker.write_text(DATACONTRACT_SPEC)
    executable = venv / "bin" / "datacontract"
    version = subprocess.run([str(executable), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.strip().startswith("1.2."), version
    yield Datacontract(executable, version.strip())


def _mesh(mm: MaterializedMesh, monkeypatch: pytest.MonkeyPatch) -> Mesh:
    """The materialized mesh, in this process (its MESH_ settings set for the test)."""
    assert mm.run.returncode == 0, mm.run.stdout + mm.run.stderr  # type: ignore[attr-defined]
    for key, value in mm.env.items():
        if key.startswith("MESH_"):
            monkeypatch.setenv(key, value)
    return Mesh.load(MeshProject.discover(mm.root))


def _status(home: Path, ref: str) -> dict[str, Any]:
    domain, product = ref.split(".")
    return json.loads((home / "products" / domain / product / "status.json").read_text())


def _rules(contract: dict[str, Any]) -> list[dict[str, Any]]:
    schema = contract["schema"][0]
    return [q for p in schema["properties"] for q in p.get("quality", [])] + schema.get("quality", [])


def _platform_check(rule: dict[str, Any]) -> str:
    """The platform's asset check a rule is (part of): a code suite's rules are one check."""
    suite = next((p["value"] for p in rule.get("customProperties", []) if p["property"] == "meshSuite"), None)
    return f"suite__{suite}" if suite else rule["id"]


def assert_agrees(contract: dict[str, Any], results: dict[str, Any], status: dict[str, Any]) -> list[str]:
    """datacontract's result for every rule is the platform's for its check; nothing else fails.
    Returns the rules reported as warnings."""
    platform = {c["name"]: c for c in status["checks"]}
    by_rule = {c["qualityId"]: c for c in results["checks"] if c.get("qualityId")}
    rules = _rules(contract)
    assert set(by_rule) == {r["id"] for r in rules}, "every rule ran, none silently left out"
    expected_by_check: dict[str, set[str]] = {}
    for rule in rules:
        expected_by_check.setdefault(_platform_check(rule), set()).add(by_rule[rule["id"]]["result"])
    warned = []
    for check, seen in expected_by_check.items():
        outcome = platform[check]
        if outcome["passed"]:
            assert seen == {"passed"}, (check, seen, [c for c in results["checks"] if c.get("qualityId")])
        else:
            assert outcome["severity"] == "warn" and "warning" in seen, (check, seen)
            warned.append(check)
    others = [c for c in results["checks"] if not c.get("qualityId")]
    present = [c for c in others if c["type"] == "field_is_present"]
    assert len(present) == len(contract["schema"][0]["properties"])
    assert platform["schema_contract"]["passed"] == all(c["result"] == "passed" for c in present)
    for check in others:
        assert check["result"] == "passed" or (check["result"], check.get("reason")) == ("warning", PARQUET_TYPES), (
            check
        )
    return warned


@pytest.mark.xdist_group("e2e")
def test_every_export_passes_datacontract_lint_and_test_and_agrees_with_the_platform(
    materialized_duckdb: MaterializedMesh, datacontract: Datacontract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mm = materialized_duckdb
    mesh = _mesh(mm, monkeypatch)
    refs = [f"{d.domain}.{p.name}" for d, p in mesh.products()]
    contracts = {}
    for ref in refs:
        contracts[ref] = tmp_path / f"{ref}.odcs.yaml"
        contracts[ref].write_text(product_contract(mesh, ref, "duckdb"))
    # the command line writes the same document (here for the product with a code suite)
    cli = mm.mesh("export-contract", "scheduling.appointments", check=True).stdout
    assert cli == contracts["scheduling.appointments"].read_text()

    def check(ref: str) -> tuple[str, subprocess.CompletedProcess, subprocess.CompletedProcess, dict]:
        lint = datacontract.run("lint", str(contracts[ref]), cwd=tmp_path)
        test, results = datacontract.test(contracts[ref])
        return ref, lint, test, results

    warned = {}
    with ThreadPoolExecutor(2) as pool:
        for ref, lint, test, results in pool.map(check, refs):
            assert lint.returncode == 0 and "valid" in lint.stdout, (ref, lint.stdout, lint.stderr)
            assert test.returncode == 0, (ref, test.stdout, test.stderr)
            assert results["result"] in ("passed", "warning"), (ref, results["result"])
            contract = yaml.safe_load(contracts[ref].read_text())
            assert contract["servers"][0]["path"] == _current(mm.home, ref)["path"]
            warned[ref] = assert_agrees(contract, results, _status(mm.home, ref))
            print(f"{ref}: datacontract {results['result']}, {len(results['checks'])} checks, warnings {warned[ref]}")
    # the platform's warn check that finds null manufacturers is datacontract's warning too
    assert "column_values_to_not_be_null__manufacturer" in warned["immunizations.administered_doses"]


def _current(home: Path, ref: str) -> dict[str, Any]:
    domain, product = ref.split(".")
    return json.loads((home / "products" / domain / product / "current.json").read_text())


@pytest.mark.xdist_group("e2e")
@pytest.mark.parametrize(
    ("ref", "defect", "rule"),
    [
        (
            "pharmacy.sites",
            "select * from v union all (select * from v order by site_id limit 1)",
            "column_values_to_be_unique__site_id",
        ),
        (
            "pharmacy.vaccine_stock",
            "select * from v union all "
            "(select * replace ('999' as vaccine_code, lot_id || '-x' as lot_id) from v limit 1)",
            "column_values_to_be_in_set__vaccine_code",
        ),
    ],
)
def test_a_blocking_failure_fails_datacontract_on_the_same_rule(
    materialized_duckdb: MaterializedMesh,
    datacontract: Datacontract,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ref: str,
    defect: str,
    rule: str,
) -> None:
    mm = materialized_duckdb
    mesh = _mesh(mm, monkeypatch)
    descriptor, product = mesh.product(ref)
    broken = tmp_path / f"{product.name}.parquet"
    with duckdb.connect() as con:
        con.execute(f"create view v as select * from read_parquet('{_current(mm.home, ref)['path']}')")
        con.execute(f"copy ({defect}) to '{broken}' (format parquet)")
        con.execute(f"create view main.{product.name} as select * from read_parquet('{broken}')")
        outcomes = run_contract(con, product, product_suites(mesh, descriptor.domain, product.name))
    blocked = {o.name for o in outcomes if o.blocks}
    assert blocked == {rule}, blocked  # the platform would not publish it, for this rule alone
    contract = yaml.safe_load(product_contract(mesh, ref, "duckdb"))
    contract["servers"][0]["path"] = str(broken)
    path = tmp_path / f"{ref}.odcs.yaml"
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    proc, results = datacontract.test(path)
    assert proc.returncode == 1 and results["result"] == "failed", proc.stdout
    failed = [c for c in results["checks"] if c["result"] == "failed"]
    assert {c["qualityId"] for c in failed if c.get("qualityId")} == {rule}
    column = rule.rsplit("__", 1)[1]
    # besides the rule, only the column's own `unique` flag (which the same expectation sets) fails
    assert all(c.get("qualityId") == rule or (c["type"], c["field"]) == ("field_unique", column) for c in failed), (
        failed
    )
    assert column in proc.stdout


@pytest.mark.xdist_group("e2e")
def test_a_product_imported_from_a_contract_runs_green_and_exports_the_same_contract(
    materialized_duckdb: MaterializedMesh, datacontract: Datacontract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team that starts from a contract: import it as a new domain, validate, run, export, test."""
    original = yaml.safe_load(
        product_contract(_mesh(materialized_duckdb, monkeypatch), "scheduling.appointments", "duckdb")
    )
    doc = {**original, "domain": "appointment_book", "id": "appointment_book.appointments"}
    doc.pop("servers")
    source = tmp_path / "appointments.odcs.yaml"
    source.write_text(yaml.safe_dump(doc, sort_keys=False))
    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")

    def mesh(*args: str) -> subprocess.CompletedProcess:
        return run_mesh_cli(*args, env=env, cwd=root, check=True)

    imported = mesh("import-contract", str(source))
    assert "created appointment_book.appointments" in imported.stderr, imported.stderr
    mesh("validate")
    mesh("run", "--domain", "appointment_book")
    status = _status(tmp_path / "home", "appointment_book.appointments")
    assert status["status"] == "published" and all(c["passed"] for c in status["checks"]), status
    exported = tmp_path / "again.odcs.yaml"
    mesh("export-contract", "appointment_book.appointments", "-o", str(exported))
    again = yaml.safe_load(exported.read_text())
    assert semantic(again) == semantic(doc)  # the suite's rules are now the product's expectations
    proc, results = datacontract.test(exported)
    assert proc.returncode == 0, proc.stdout
    assert not assert_agrees(again, results, status)


@pytest.mark.postgres
@pytest.mark.xdist_group("e2e_pg")
def test_on_postgres_the_export_names_the_owners_table_and_datacontract_agrees(
    materialized_pg: MaterializedMesh, datacontract: Datacontract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh_platform.pg_warehouse.roles import PASSWORDS_DIR, domain_role

    mm = materialized_pg
    mesh = _mesh(mm, monkeypatch)
    for descriptor, product in mesh.products():
        ref = f"{descriptor.domain}.{product.name}"
        contract = tmp_path / f"{ref}.odcs.yaml"
        contract.write_text(mm.mesh("export-contract", ref, check=True).stdout)
        doc = yaml.safe_load(contract.read_text())
        (server,) = doc["servers"]
        role = domain_role(descriptor.domain)
        assert server | {"description": ""} == {
            "server": "postgres",
            "type": "postgres",
            "host": mm.server.host,  # type: ignore[attr-defined]
            "port": mm.server.port,  # type: ignore[attr-defined]
            "database": descriptor.domain,
            "schema": "main",
            "environment": "prod",
            "description": "",
            "roles": [{"role": role, "access": "read", "description": f"the {descriptor.domain} domain's login role"}],
        }
        password = (mm.home / PASSWORDS_DIR / role).read_text().strip()
        env = {
            **mesh_env(mm.root, mm.home),
            "DATACONTRACT_POSTGRES_USERNAME": role,
            "DATACONTRACT_POSTGRES_PASSWORD": password,
        }
        proc, results = datacontract.test(contract, env)
        assert proc.returncode == 0, (ref, proc.stdout)
        assert_agrees(doc, results, _status(mm.home, ref))
        types = [c for c in results["checks"] if c["type"] == "field_physical_type"]
        assert len(types) == len(product.columns) and all(c["result"] == "passed" for c in types), types
