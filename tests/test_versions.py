"""Majors side by side (issue 21, item 3): a producer keeps its older major built and published next to
the new one while a consumer pins it; the pinned read is governed like any other; a sunset warns,
then stops the older major's builds."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mesh_platform.contracts.majors import pinned_majors_outcome, sunset_warnings
from mesh_platform.defs.domain_definitions import build_domain, definitions_from
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.project.mesh import Mesh, pinned_majors
from tests.conftest import TEST_MASKING_KEY, copy_project, mesh_env, run_mesh_cli

STOCK_V1 = '''

@product("vaccine_stock", major=1, reads=["raw_vaccine_lots"])
def vaccine_stock_v1(ctx: AssetContext) -> str:
    return f"""
        select lot_id, vaccine_code, manufacturer, site_id, doses_received, received_on, expires_on
        from {ctx.read("raw_vaccine_lots")} as lots
        order by lot_id
    """
'''


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


LOTS_BY_MANUFACTURER = """

@internal("lots_by_manufacturer", description="Lots per manufacturer.", reads=["pharmacy.vaccine_stock"])
def lots_by_manufacturer(ctx: AssetContext) -> str:
    return f"select manufacturer, count(*) as lots from {ctx.read('pharmacy.vaccine_stock')} group by all"
"""


def two_majors(root: Path, sunset: str = "2099-12-31", pin: str = "@1") -> None:
    """pharmacy.vaccine_stock 2.0 renames `manufacturer` to `maker` (a breaking change); 1.0 stays,
    built by its own function. immunizations (dbt) and site_operations (Python), whose code reads
    `manufacturer`, pin `pin`; patient_360 consumes the product unpinned (the latest major)."""
    descriptor = root / "domains" / "pharmacy" / "domain.yaml"
    text = descriptor.read_text()
    start = text.index("  - name: vaccine_stock")
    end = text.index("      consumers: [immunizations, site_operations]\n", start)
    end += len("      consumers: [immunizations, site_operations]\n")
    entry = text[start:end]
    v2 = entry.replace("    freshness: 26h\n", '    version: "2.0"\n    freshness: 26h\n', 1)
    v2 = v2.replace("{name: manufacturer,", "{name: maker,").replace(
        "site_operations]", "site_operations, patient_360]"
    )
    v1 = entry.replace("    freshness: 26h\n", f'    version: "1.0"\n    sunset: {sunset}\n    freshness: 26h\n', 1)
    descriptor.write_text(text[:start] + v2 + v1 + text[end:])
    assets = root / "domains" / "pharmacy" / "assets.py"
    _edit(
        assets,
        "select lot_id, vaccine_code, manufacturer, site_id",
        "select lot_id, vaccine_code, manufacturer as maker, site_id",
    )
    assets.write_text(assets.read_text() + STOCK_V1)
    _edit(
        root / "domains" / "immunizations" / "domain.yaml",
        "  - pharmacy.vaccine_stock\n",
        f"  - pharmacy.vaccine_stock{pin}\n",
    )
    site_operations = root / "domains" / "site_operations"
    _edit(
        site_operations / "domain.yaml",
        "  - pharmacy.sites\n",
        f"  - pharmacy.sites\n  - pharmacy.vaccine_stock{pin}\n",
    )
    _edit(site_operations / "assets.py", "import AssetContext, product", "import AssetContext, internal, product")
    (site_operations / "assets.py").write_text((site_operations / "assets.py").read_text() + LOTS_BY_MANUFACTURER)
    _edit(root / "domains" / "patient_360" / "domain.yaml", "consumes:\n", "consumes:\n  - pharmacy.vaccine_stock\n")


def _mesh(root: Path) -> Mesh:
    return Mesh.load(MeshProject(root, MeshHome(root / ".mesh-test-home")))


# --- the descriptor: majors, pins, sunset ---------------------------------------------------------


def test_an_older_major_is_its_own_product_and_a_pin_resolves_to_it(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    two_majors(root)
    mesh = _mesh(root)
    assert mesh.problems == []
    pharmacy = mesh.descriptors["pharmacy"]
    assert [(p.name, p.version) for p in pharmacy.majors_of("vaccine_stock")] == [
        ("vaccine_stock", "2.0"),
        ("vaccine_stock_v1", "1.0"),
    ]
    assert mesh.resolve("immunizations", "pharmacy.vaccine_stock") == "pharmacy.vaccine_stock_v1"
    assert mesh.resolve("patient_360", "pharmacy.vaccine_stock") == "pharmacy.vaccine_stock"
    assert mesh.consumers_of("pharmacy", "vaccine_stock_v1") == ["immunizations", "site_operations"]
    assert mesh.consumers_of("pharmacy", "vaccine_stock") == ["patient_360"]
    assert mesh.product("pharmacy.vaccine_stock@1")[1].name == "vaccine_stock_v1"
    assert pinned_majors(mesh) == {("pharmacy", "vaccine_stock_v1", 1)}


def test_a_pin_to_the_latest_major_reads_the_product_itself(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    two_majors(root, pin="@2")
    mesh = _mesh(root)
    assert mesh.problems == []
    assert mesh.resolve("immunizations", "pharmacy.vaccine_stock") == "pharmacy.vaccine_stock"
    assert pinned_majors(mesh) == {("pharmacy", "vaccine_stock", 2)}


@pytest.mark.parametrize(
    ("edit", "file", "field", "rule", "says"),
    [
        (
            lambda root: _edit(
                root / "domains" / "immunizations" / "domain.yaml", "vaccine_stock@1", "vaccine_stock@3"
            ),
            "domains/immunizations/domain.yaml",
            "consumes[0]",
            "consume-major",
            "publishes no major 3 of 'vaccine_stock' (published: @2, @1)",
        ),
        (
            lambda root: _edit(
                root / "domains" / "pharmacy" / "domain.yaml", "sunset: 2099-12-31", "sunset: 2027-13-45"
            ),
            "domains/pharmacy/domain.yaml",
            "products[2].sunset",
            "yaml",
            "month must be in 1..12",
        ),
        (
            lambda root: _edit(
                root / "domains" / "pharmacy" / "domain.yaml", "sunset: 2099-12-31", "sunset: next week"
            ),
            "domains/pharmacy/domain.yaml",
            "products[2].sunset",
            "sunset-format",
            "sunset is a date YYYY-MM-DD",
        ),
        (
            lambda root: _edit(root / "domains" / "pharmacy" / "domain.yaml", 'version: "1.0"', 'version: "2.1"'),
            "domains/pharmacy/domain.yaml",
            "products",
            "value-error",
            "each with a version of a different MAJOR",
        ),
        (
            lambda root: _edit(
                root / "domains" / "pharmacy" / "domain.yaml",
                'version: "2.0"',
                'version: "2.0"\n    sunset: 2030-01-01',
            ),
            "domains/pharmacy/domain.yaml",
            "products",
            "value-error",
            "sunset applies to an older major, not the latest (2)",
        ),
    ],
    ids=["pin-to-missing-major", "impossible-sunset-date", "sunset-not-a-date", "same-major-twice", "sunset-on-latest"],
)
def test_descriptor_errors_name_file_and_key(
    tmp_path: Path, edit: Callable[[Path], None], file: str, field: str, rule: str, says: str
) -> None:
    root = copy_project(tmp_path / "project")
    two_majors(root)
    edit(root)
    mesh = _mesh(root)
    found = [p for p in mesh.problems if p.file == file and p.rule == rule]
    assert found, [str(p) for p in mesh.problems]
    assert found[0].field == field and says in found[0].message and found[0].line
    assert "\n" not in str(found[0])


def test_sunset_warns_pinned_consumers_then_says_the_major_is_no_longer_built(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    two_majors(root, sunset="2027-03-01")
    mesh = _mesh(root)
    before = sunset_warnings(mesh, today=date(2027, 2, 1))
    assert [(w.file, w.field, w.rule) for w in before] == [
        ("domains/immunizations/domain.yaml", "consumes[0]", "pinned-major-sunset"),
        ("domains/site_operations/domain.yaml", "consumes[1]", "pinned-major-sunset"),
    ]
    assert "sunset on 2027-03-01 (in 28 days): move to pharmacy.vaccine_stock@2" in before[0].message
    after = sunset_warnings(mesh, today=date(2027, 3, 2))
    assert {w.rule for w in after} == {"pinned-major-sunset", "major-sunset"}
    assert all("no longer built" in w.message for w in after)
    check = pinned_majors_outcome(mesh, "immunizations", today=date(2027, 2, 1))
    assert (check.passed, check.blocking, check.severity) == (False, False, "warn")
    assert pinned_majors_outcome(mesh, "patient_360").passed  # it pins nothing


# --- a real run: both majors built and audited, each consumer reads its own ----------------------


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("majors")
    root, home = copy_project(base / "project"), base / "home"
    two_majors(root)
    env = mesh_env(root, home)
    home.mkdir()
    (home / "masking.key").write_text(TEST_MASKING_KEY)
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    domains = ("pharmacy", "scheduling", "immunizations", "site_operations")
    run_mesh_cli("run", *(arg for d in domains for arg in ("--domain", d)), env=env, cwd=root, check=True)
    return root, home, env


def _stored(home: Path, domain: str, name: str, what: str = "current.json") -> dict:
    return json.loads((home / "products" / domain / name / what).read_text())


def _read(env: dict[str, str], root: Path, *args: str) -> list[dict]:
    proc = run_mesh_cli("read", *args, "--limit", "3", "--json", env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_both_majors_are_built_audited_and_published_side_by_side(side_by_side) -> None:
    _root, home, _env = side_by_side
    latest, older = _stored(home, "pharmacy", "vaccine_stock"), _stored(home, "pharmacy", "vaccine_stock_v1")
    assert "maker" in latest["columns"] and "manufacturer" not in latest["columns"]
    assert "manufacturer" in older["columns"] and "maker" not in older["columns"]
    assert latest["rows"] == older["rows"] > 0
    for name in ("vaccine_stock", "vaccine_stock_v1"):
        checks = _stored(home, "pharmacy", name, "status.json")["checks"]
        assert {c["name"] for c in checks} >= {"schema_contract", "column_values_to_be_unique__lot_id"}
        assert all(c["passed"] for c in checks if c["blocking"])
    # the pinned consumers' dbt model and Python asset read `manufacturer`, which only the older major has
    assert _stored(home, "immunizations", "administered_doses")["rows"] > 0
    with duckdb.connect(str(MeshHome(home).warehouse("site_operations")), read_only=True) as con:
        lots = con.execute("select sum(lots) from main.lots_by_manufacturer").fetchone()[0]
    assert lots == older["rows"]
    checks = {c["name"]: c for c in _stored(home, "immunizations", "administered_doses", "status.json")["checks"]}
    pinned = checks["pinned_majors"]
    assert (pinned["passed"], pinned["severity"], pinned["blocking"]) == (False, "warn", False)
    assert "pharmacy.vaccine_stock@1, which is sunset on 2099-12-31" in pinned["summary"]


@pytest.mark.slow
def test_the_pinned_consumer_reads_the_older_major_and_an_unpinned_one_the_latest(side_by_side) -> None:
    root, _home, env = side_by_side
    pinned = _read(env, root, "pharmacy.vaccine_stock", "--as", "immunizations")
    unpinned = _read(env, root, "pharmacy.vaccine_stock", "--as", "patient_360")
    assert "manufacturer" in pinned[0] and "maker" not in pinned[0]
    assert "maker" in unpinned[0] and "manufacturer" not in unpinned[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ref", "reader", "rule"),
    [
        ("pharmacy.vaccine_stock@1", "scheduling", "read-through-consumes"),  # not a consumer at all
        ("pharmacy.vaccine_stock_v1", "scheduling", "read-through-consumes"),  # by its stored name
        ("pharmacy.vaccine_stock@1", "patient_360", "read-pinned-major"),  # a consumer of the latest only
        ("pharmacy.vaccine_stock@2", "immunizations", "read-pinned-major"),  # pinned to the other major
    ],
)
def test_a_major_is_refused_to_who_may_not_read_it_and_the_refusal_audited(side_by_side, ref, reader, rule) -> None:
    root, home, env = side_by_side
    proc = run_mesh_cli("read", ref, "--as", reader, "--json", env=env, cwd=root)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    refused = [json.loads(line) for line in (home / "audit" / "reads.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "refused" and r.get("consumer") == reader and r.get("rule") == rule for r in refused)


@pytest.mark.slow
def test_the_sandbox_lets_no_step_read_the_older_major_unmasked(side_by_side) -> None:
    """The engine's guarantee holds for every major: a consumer's step reads its projection, never the
    published file of either major, and a non-consumer gets no projection at all."""
    from mesh_platform.defs.warehouse_io import prepare_inputs, step_sandbox
    from mesh_platform.governance.read import AccessDenied
    from mesh_platform.governance.sandbox import open_sandboxed

    root, home, _env = side_by_side
    mesh = Mesh.load(MeshProject(root, MeshHome(home)))
    older = _stored(home, "pharmacy", "vaccine_stock_v1")["path"]
    inputs = prepare_inputs(mesh, "immunizations", ["pharmacy.vaccine_stock"], "test-run", "test", in_duckdb=True)
    assert [i.grant.ref for i in inputs] == ["pharmacy.vaccine_stock_v1"]
    staging = home / "staging" / "immunizations" / "test-run"
    staging.mkdir(parents=True, exist_ok=True)
    with open_sandboxed(mesh.project.home, step_sandbox(mesh, "immunizations", staging, inputs)) as con:
        assert con.execute(f"select count(*) from read_parquet('{inputs[0].projection}')").fetchone()[0] > 0
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"select * from read_parquet('{older}')").fetchall()
    with pytest.raises(AccessDenied):
        prepare_inputs(mesh, "scheduling", ["pharmacy.vaccine_stock@1"], "test-run", "test", in_duckdb=True)
    outsider = step_sandbox(mesh, "scheduling", staging, [])
    with open_sandboxed(mesh.project.home, outsider) as con, pytest.raises(duckdb.PermissionException):
        con.execute(f"select * from read_parquet('{older}')").fetchall()


@pytest.mark.slow
def test_majors_are_visible_in_products_contracts_and_asset_metadata(side_by_side) -> None:
    root, home, env = side_by_side
    products = json.loads(run_mesh_cli("products", "--json", env=env, cwd=root, check=True).stdout)
    by_ref = {p["ref"]: p for p in products}
    assert by_ref["pharmacy.vaccine_stock"]["version"] == "2.0"
    older = by_ref["pharmacy.vaccine_stock@1"]
    assert (older["version"], older["sunset"], older["major_of"]) == ("1.0", "2099-12-31", "pharmacy.vaccine_stock")
    assert older["consumed_by"] == ["immunizations", "site_operations"] and older["status"]["last_run"] == "published"
    table = run_mesh_cli("products", env={**env, "COLUMNS": "200"}, cwd=root, check=True).stdout
    assert "1.0 (sunset 2099-12-31)" in table
    for ref, version in (("pharmacy.vaccine_stock@1", "1.0.0"), ("pharmacy.vaccine_stock", "2.0.0")):
        contract = run_mesh_cli("export-contract", ref, env=env, cwd=root, check=True).stdout
        assert f"version: {version}" in contract
    mesh = Mesh.load(MeshProject(root, MeshHome(home)))
    graph = definitions_from([build_domain(mesh, "pharmacy")]).resolve_asset_graph()
    metadata = graph.get(dg.AssetKey(["pharmacy", "vaccine_stock_v1"])).metadata
    assert (metadata["mesh/version"], metadata["mesh/sunset"]) == ("1.0", "2099-12-31")
    consumer = definitions_from([build_domain(mesh, "immunizations")]).resolve_asset_graph()
    parents = consumer.get(dg.AssetKey(["immunizations", "administered_doses"])).parent_keys
    assert dg.AssetKey(["pharmacy", "vaccine_stock_v1"]) in parents
    python = definitions_from([build_domain(mesh, "site_operations")]).resolve_asset_graph()
    parents = python.get(dg.AssetKey(["site_operations", "lots_by_manufacturer"])).parent_keys
    assert parents == {dg.AssetKey(["pharmacy", "vaccine_stock_v1"])}


@pytest.mark.slow
def test_after_its_sunset_the_older_major_is_no_longer_built(side_by_side) -> None:
    """Last: it changes the shared project."""
    root, home, env = side_by_side
    _edit(root / "domains" / "pharmacy" / "domain.yaml", "sunset: 2099-12-31", "sunset: 2020-01-01")
    validate = run_mesh_cli("validate", env=env, cwd=root)
    assert validate.returncode == 0, validate.stderr
    assert (
        "[major-sunset] pharmacy.vaccine_stock@1 passed its sunset (2020-01-01): it is no longer built"
        in validate.stderr
    )
    assert "immunizations pins pharmacy.vaccine_stock@1, sunset on 2020-01-01: it is no longer built" in validate.stderr
    older, latest = _stored(home, "pharmacy", "vaccine_stock_v1"), _stored(home, "pharmacy", "vaccine_stock")
    run = run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root, check=True)
    assert "vaccine_stock_v1" not in run.stderr + run.stdout  # neither its step nor a result line
    assert _stored(home, "pharmacy", "vaccine_stock_v1") == older  # not built again
    assert _stored(home, "pharmacy", "vaccine_stock")["version"] != latest["version"]
    # its last version stays readable to the consumer still pinned to it
    assert "manufacturer" in _read(env, root, "pharmacy.vaccine_stock", "--as", "immunizations")[0]
