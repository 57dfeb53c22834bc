"""Self-serve: `mesh new-domain` / `new-product` scaffolds, the catalog, lineage formats, ODCS contracts."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from mesh_platform.catalog.products import freshness
from mesh_platform.contracts.odcs_export import to_yaml
from mesh_platform.contracts.odcs_import import from_yaml
from mesh_platform.descriptor.model import Product
from mesh_platform.lineage import domain_lineage, lineage, to_dot, to_mermaid
from mesh_platform.lineage.readme_diagram import lineage_block, readme_lineage
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.scaffold.apply import ScaffoldError
from mesh_platform.scaffold.new_domain import new_domain, plan_new_domain
from mesh_platform.scaffold.new_product import new_product, with_product_entry
from mesh_platform.scaffold.plan import FilePlan
from tests.conftest import ROOT, copy_project, mesh_env, run_mesh_cli

RUFF = str(Path(sys.executable).with_name("ruff"))


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _mesh(project: Path) -> Mesh:
    return Mesh.load(MeshProject.discover(project))


def _problems(project: Path) -> list[str]:
    from mesh_platform.defs.domain_definitions import build_domain
    from mesh_platform.descriptor.problems import MeshDefinitionError

    mesh = _mesh(project)
    problems = [str(p) for p in mesh.problems]
    for domain in mesh.descriptors:
        try:
            build_domain(mesh, domain)
        except MeshDefinitionError as exc:
            problems += [str(p) for p in exc.problems]
    return problems


def same_product(a: Product, b: Product) -> bool:
    """Equal, but for the order of expectations (a contract keeps them per column and per schema)."""

    def key(p: Product) -> list[str]:
        return sorted(json.dumps(e.model_dump(), sort_keys=True, default=str) for e in p.expectations)

    return a.model_copy(update={"expectations": []}) == b.model_copy(update={"expectations": []}) and key(a) == key(b)


def _ruff_clean(project: Path, *paths: str) -> None:
    """The repository's lint and format rules, with mesh_platform first-party as in the repository."""
    config = ["--config", str(ROOT / "pyproject.toml"), "--config", "lint.isort.known-first-party = ['mesh_platform']"]
    for args in (["check", *config], ["format", "--check", *config[:2]]):
        proc = subprocess.run([RUFF, *args, *paths], cwd=project, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def with_readme(project: Path) -> Path:
    shutil.copy(ROOT / "README.md", project / "README.md")
    return project


# --- new-domain / new-product: refused input writes nothing -------------------------------------------


@pytest.mark.parametrize(
    ("name", "owner", "consumes", "kind", "reason"),
    [
        ("my domain", "team:x", [], "python", "is not valid"),
        ("Outreach", "team:x", [], "python", "is not valid"),
        ("../x", "team:x", [], "python", "is not valid"),
        ("9lives", "team:x", [], "python", "is not valid"),
        ("class", "team:x", [], "python", "Python keyword"),
        ("match", "team:x", [], "python", "Python keyword"),
        ("mesh_platform", "team:x", [], "python", "reserved by the platform"),
        ("tests", "team:x", [], "python", "reserved by the platform"),
        ("select", "team:x", [], "python", "reserved SQL word"),
        ("order", "team:x", [], "dbt", "reserved SQL word"),
        ("pharmacy", "team:x", [], "python", "domains/pharmacy already exists"),
        ("a" * 41, "team:x", [], "python", "longer than 40"),
        ("outreach", "nobody", [], "python", "is not a Dagster owner"),
        ("outreach", "team:x", ["pharmacy.nope"], "python", "unknown product 'pharmacy.nope'"),
        ("outreach", "team:x", ["pharmacy"], "python", "is not DOMAIN.PRODUCT"),
        ("outreach", "team:x", ["pharmacy.sites", "pharmacy.sites"], "python", "given twice"),
        ("outreach", "team:x", [], "java", "--kind must be one of"),
    ],
)
def test_new_domain_refuses_bad_input_and_writes_nothing(project, name, owner, consumes, kind, reason) -> None:
    before = _tree(project)
    with pytest.raises(ScaffoldError, match=re.escape(reason)):
        new_domain(_mesh(project), name, owner, consumes, kind, "example")
    assert _tree(project) == before


def test_new_domain_refuses_a_taken_code_location_or_dbt_folder(project) -> None:
    (project / "dbt_projects" / "outreach").mkdir()
    with pytest.raises(ScaffoldError, match="dbt_projects/outreach already exists"):
        plan_new_domain(_mesh(project), "outreach", "team:x", [], "dbt", "example")
    with (project / "workspace.yaml").open("a") as f:
        f.write("  - python_file: {relative_path: x.py, location_name: reach, working_directory: .}\n")
    with pytest.raises(ScaffoldError, match="already has a code location named 'reach'"):
        plan_new_domain(_mesh(project), "reach", "team:x", [], "python", "example")


@pytest.mark.parametrize(
    ("domain", "name", "reason"),
    [
        ("pharmacy", "sites", "already exists in domains/pharmacy/domain.yaml"),
        ("pharmacy", "raw_sites", "already defines 'raw_sites'"),
        ("pharmacy", "Sites", "is not valid"),
        ("pharmacy", "../sites", "is not valid"),
        ("pharmacy", "table", "reserved SQL word"),
        ("pharmacy", "lambda", "Python keyword"),
        ("pharmacy", "product", "reserved by the platform"),
        ("patients", "stg_patients", "already has a model named 'stg_patients'"),
        ("nowhere", "things", "unknown domain 'nowhere'"),
        ("site_operations", "things", "has no dbt project"),
    ],
)
def test_new_product_refuses_bad_input_and_writes_nothing(project, domain, name, reason) -> None:
    before = _tree(project)
    kind = "dbt" if domain == "site_operations" else None
    with pytest.raises(ScaffoldError, match=re.escape(reason)):
        new_product(_mesh(project), domain, name, kind)
    assert _tree(project) == before


def test_cli_invalid_name_exits_2_and_refusal_exits_1_with_the_reason_on_stderr(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    before = _tree(root)
    proc = run_mesh_cli("new-domain", "../evil", "--owner", "team:x", env=env, cwd=root)
    assert proc.returncode == 2 and "domain name '../evil' is not valid" in proc.stderr and not proc.stdout
    proc = run_mesh_cli("new-product", "pharmacy", "sites", env=env, cwd=root)
    assert proc.returncode == 1 and "already exists" in proc.stderr and "nothing was written" in proc.stderr
    assert _tree(root) == before


def test_a_failed_write_restores_every_file(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("before")
    plan = FilePlan(tmp_path)
    plan.write(tmp_path / "kept.txt", "after")
    plan.write(tmp_path / "new" / "deep" / "file.txt", "x")
    with pytest.raises(RuntimeError), plan.applied():
        assert (tmp_path / "kept.txt").read_text() == "after"
        raise RuntimeError("dbt refused it")
    assert (tmp_path / "kept.txt").read_text() == "before" and not (tmp_path / "new").exists()


# --- new-domain / new-product: what they write is valid, linted and builds --------------------------------


def test_new_python_domain_validates_builds_and_is_linted(with_readme: Path) -> None:
    project = with_readme
    result = new_domain(_mesh(project), "vaccine_outreach", "team:outreach", ["pharmacy.sites"], "python", "example")
    assert set(result.created) == {
        f"domains/vaccine_outreach/{f}"
        for f in ("domain.yaml", "assets.py", "definitions.py", "test_vaccine_outreach.py")
    }
    assert set(result.changed) == {"workspace.yaml", "README.md"} and not result.notes
    workspace = yaml.safe_load((project / "workspace.yaml").read_text())["load_from"]
    assert {"relative_path": "domains/vaccine_outreach/definitions.py", "location_name": "vaccine_outreach",
            "working_directory": "."} in [e["python_file"] for e in workspace]  # fmt: skip
    assert _problems(project) == []
    mesh = _mesh(project)
    assert mesh.descriptors["vaccine_outreach"].consumes == ["pharmacy.sites"]
    assert "vaccine_outreach" in mesh.consumers_of("pharmacy", "sites")
    # the README's generated diagram now includes the domain (tests/test_readme.py stays green)
    assert readme_lineage(project / "README.md") == lineage_block(mesh)
    assert "pharmacy__sites --> vaccine_outreach__example" in readme_lineage(project / "README.md")
    _ruff_clean(project, "domains/vaccine_outreach")


def test_new_domain_without_consumes_reads_an_inline_source(project: Path) -> None:
    new_domain(_mesh(project), "standalone", "owner@example.com", [], "python", "items")
    descriptor = _mesh(project).descriptors["standalone"]
    assert descriptor.consumes == [] and descriptor.owner == "owner@example.com"
    assert [c.name for c in descriptor.product("items").columns] == ["item_id", "label", "quantity"]
    assert _problems(project) == []
    _ruff_clean(project, "domains/standalone")


def test_ungranted_consume_is_reported_with_the_line_to_change(project: Path) -> None:
    result = new_domain(_mesh(project), "outreach", "team:x", ["patients.patient_accounts"], "python", "example")
    assert "add 'outreach' to products[0].access.consumers in domains/patients/domain.yaml" in result.notes[0]
    problems = _problems(project)
    assert any(
        "[access-granted]" in p
        and "add 'outreach' to products[0].access.consumers in domains/patients/domain.yaml" in p
        for p in problems
    ), problems


def test_new_product_in_python_domains_keeps_the_descriptor_and_code(project: Path) -> None:
    before = {d: p.products for d, p in _mesh(project).descriptors.items()}
    new_product(_mesh(project), "pharmacy", "site_summary")
    new_product(_mesh(project), "site_operations", "capacity_inputs")
    mesh = _mesh(project)
    assert mesh.descriptors["pharmacy"].products[:-1] == before["pharmacy"]
    assert mesh.descriptors["site_operations"].products[-1].name == "capacity_inputs"
    reads = re.search(
        r"reads=\[(.*?)\]",
        (project / "domains/site_operations/assets.py").read_text().split('"capacity_inputs"')[1],
        re.S,
    )
    assert reads and reads.group(1).count(".") == 4  # built from all four consumed products
    assert _problems(project) == []
    _ruff_clean(project, "domains/pharmacy", "domains/site_operations")


def test_a_product_added_to_a_domain_does_not_say_it_was_scaffolded_with_the_domain(project: Path) -> None:
    new_product(_mesh(project), "pharmacy", "site_summary")  # Python, inline source
    new_product(_mesh(project), "patients", "patient_samples")  # dbt, inline source
    new_domain(_mesh(project), "standalone", "owner@example.com", [], "python", "items")
    mesh = _mesh(project)
    for domain, name in (("pharmacy", "site_summary"), ("patients", "patient_samples")):
        value = mesh.descriptors[domain].product(name).value
        assert "added by mesh new-product" in value and "with the domain" not in value, value
    assert "scaffolded with the domain" in mesh.descriptors["standalone"].product("items").value


def test_new_product_in_a_dbt_domain_writes_a_model_and_prepares_the_manifest(project: Path) -> None:
    result = new_product(_mesh(project), "patient_360", "journey_inputs")
    assert "dbt_projects/patient_360/models/marts/journey_inputs.sql" in result.created
    manifest = json.loads((project / "dbt_projects/patient_360/target/manifest.json").read_text())
    assert "model.patient_360.journey_inputs" in manifest["nodes"]
    sql = (project / "dbt_projects/patient_360/models/marts/journey_inputs.sql").read_text()
    assert sql.count("source(") == 4
    assert _problems(project) == []


def test_product_entry_follows_the_files_layout() -> None:
    text = "domain: d\nproducts: []\nschedule: '0 4 * * *'\n"
    assert with_product_entry(text, "  - name: x\n") == "domain: d\nproducts:\n  - name: x\nschedule: '0 4 * * *'\n"
    text = "products:\n- name: a\n  x: 1\n\n# trailing comment\nconsumes: []\n"
    assert yaml.safe_load(with_product_entry(text, "  - name: b\n    y: 2\n"))["products"] == [
        {"name": "a", "x": 1},
        {"name": "b", "y": 2},
    ]


# --- catalog ---------------------------------------------------------------------------------------------


def test_freshness_states() -> None:
    product = Product.model_validate(
        {
            "name": "p",
            "description": "d",
            "value": "v",
            "columns": [{"name": "c", "type": "string", "description": "c"}],
        }
    )
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert freshness(product, None, now)["state"] == "unpublished"
    assert freshness(product, now.isoformat(), now)["state"] == "no policy"
    daily = product.model_copy(update={"freshness": "26h"})
    fresh = freshness(daily, (now - timedelta(hours=25)).isoformat(), now)
    assert fresh == {
        "policy": "26h",
        "max_age_seconds": 93600,
        "state": "fresh",
        "age_seconds": 90000.0,
        "published_at": (now - timedelta(hours=25)).isoformat(),
    }
    assert freshness(daily, (now - timedelta(hours=27)).isoformat(), now)["state"] == "stale"


def test_products_describes_one_product_and_refuses_unknown(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    entry = json.loads(run_mesh_cli("products", "patients.patient_accounts", "--json", env=env, cwd=root).stdout)
    assert entry["ref"] == "patients.patient_accounts" and entry["freshness"]["state"] == "unpublished"
    assert {c["name"]: c["mask"] for c in entry["columns"]}["email"] == "token"
    assert all(x["severity"] in ("error", "warn") for x in entry["expectations"]) and entry["expectations"]
    table = run_mesh_cli("products", "patients.patient_accounts", env=env, cwd=root, check=True).stdout
    assert "masking for consumers" in table and "pii" in table and "unpublished (≤ 26h)" in table
    proc = run_mesh_cli("products", "patients.nope", env=env, cwd=root)
    assert proc.returncode == 2 and "unknown product 'patients.nope'" in proc.stderr and not proc.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("e2e")
def test_catalog_shows_freshness_and_checks_after_a_run(materialized) -> None:
    entries = json.loads(materialized.mesh("products", "--json", check=True).stdout)
    for e in entries:
        assert e["freshness"]["state"] == "fresh", e["freshness"]
        assert e["freshness"]["age_seconds"] < e["freshness"]["max_age_seconds"]
    one = json.loads(materialized.mesh("products", "pharmacy.sites", "--json", check=True).stdout)
    names = {c["name"] for c in one["status"]["checks"]}
    assert {x["check"] for x in one["expectations"]} <= names
    table = materialized.mesh("products", check=True).stdout
    assert "fresh (age)" in table and re.search(r"^pharmacy\.sites .* fresh \d", table, re.M), table


# --- lineage ---------------------------------------------------------------------------------------------


def _dot_is_well_formed(dot: str) -> None:
    """Balanced braces and quotes, one statement per line ending in ';' or a brace, declared edge ends."""
    assert dot.startswith("digraph mesh {") and dot.rstrip().endswith("}")
    depth = 0
    declared, ends = set(), set()
    for line in dot.splitlines():
        stripped = line.strip()
        assert stripped.count('"') % 2 == 0, line
        depth += stripped.count("{") - stripped.count("}")
        assert depth >= 0, line
        assert stripped.endswith((";", "{", "}")), line
        if m := re.fullmatch(r'"([^"]+)" \[label="[^"]*"\];', stripped):
            declared.add(m.group(1))
        if m := re.fullmatch(r'"([^"]+)" -> "([^"]+)";', stripped):
            ends |= {m.group(1), m.group(2)}
    assert depth == 0 and ends <= declared, ends - declared


def test_lineage_formats_product_and_domain_level() -> None:
    graph = lineage(_mesh(ROOT))
    product_dot, domain_dot = to_dot(graph), to_dot(graph, domains=True)
    _dot_is_well_formed(product_dot)
    _dot_is_well_formed(domain_dot)
    assert '"pharmacy.vaccine_stock" -> "immunizations.administered_doses";' in product_dot
    assert '"pharmacy" -> "immunizations";' in domain_dot and "subgraph" not in domain_dot
    domains = domain_lineage(graph)
    assert {n["id"] for n in domains["nodes"]} == set(_mesh(ROOT).descriptors)
    expected = {(e["from"].split(".")[0], e["to"].split(".")[0]) for e in graph["edges"]}
    assert {(e["from"], e["to"]) for e in domains["edges"]} == expected
    mermaid = to_mermaid(graph, domains=True)
    assert mermaid.startswith("flowchart LR") and "  pharmacy --> immunizations\n" in mermaid


def test_lineage_cli_formats(tmp_path: Path) -> None:
    env = mesh_env(ROOT, tmp_path / "home")
    dot = run_mesh_cli("lineage", "--format", "dot", "--domains", env=env, cwd=ROOT, check=True).stdout
    _dot_is_well_formed(dot)
    proc = run_mesh_cli("lineage", "--format", "svg", env=env, cwd=ROOT)
    assert proc.returncode == 2 and "--format must be one of mermaid, json, dot" in proc.stderr


def test_readme_test_fails_when_the_diagram_is_stale(with_readme: Path) -> None:
    mesh = _mesh(with_readme)
    assert readme_lineage(with_readme / "README.md") == lineage_block(mesh)
    readme = with_readme / "README.md"
    readme.write_text(readme.read_text().replace("pharmacy__sites --> site_operations__site_daily_capacity\n", ""))
    assert readme_lineage(readme) != lineage_block(mesh)


# --- ODCS contracts --------------------------------------------------------------------------------------


def test_every_product_exports_a_valid_odcs_contract_that_reads_back_equal() -> None:
    schema = json.loads(OpenDataContractStandard.json_schema())
    mesh = _mesh(ROOT)
    for descriptor, product in mesh.products():
        text = to_yaml(descriptor, product)
        data = yaml.safe_load(text)
        jsonschema.validate(data, schema)
        doc = OpenDataContractStandard.from_string(text)
        assert doc.apiVersion.startswith("v3.") and doc.kind == "DataContract"
        back = from_yaml(text)
        assert back.ref == f"{descriptor.domain}.{product.name}"
        assert back.owner == descriptor.owner_of(product)
        assert same_product(back.product, product.model_copy(update={"owner": None})), back.ref


def test_odcs_contract_carries_schema_quality_team_and_sla() -> None:
    descriptor, product = _mesh(ROOT).product("patients.patient_accounts")
    doc = yaml.safe_load(to_yaml(descriptor, product))
    props = {p["name"]: p for p in doc["schema"][0]["properties"]}
    assert props["email"]["classification"] == "pii" and props["email"]["logicalType"] == "string"
    assert props["email"]["physicalType"] == "VARCHAR" and "physicalName" not in doc["schema"][0]
    quality = [q for p in props.values() for q in p.get("quality", [])] + doc["schema"][0].get("quality", [])
    assert {q["severity"] for q in quality} <= {"error", "warning"} and len(quality) == len(product.expectations)
    # every expectation of this product has an ODCS-native form, which ODCS tools run
    assert {q["id"]: (q.get("metric"), q["severity"]) for q in quality} == {
        "column_values_to_not_be_null__patient_id": ("nullValues", "error"),
        "column_values_to_be_unique__patient_id": ("duplicateValues", "error"),
        "column_values_to_match_regex__email": ("invalidValues", "warning"),
        "column_values_to_be_in_set__age_band": ("invalidValues", "error"),
    }
    assert props["email"]["quality"][0]["arguments"] == {"pattern": "^[^@]+@[^@]+$"}
    assert props["patient_id"]["required"] is True and props["patient_id"]["unique"] is True
    assert doc["team"]["name"] == "patient-services"
    assert doc["slaProperties"] == [
        {
            "property": "latency",
            "value": 26,
            "unit": "h",
            "driver": "operational",
            "description": "freshness: a new version is published at most 26h after the previous one",
        }
    ]
    assert doc["description"]["purpose"] == product.value


def test_export_contract_cli(tmp_path: Path) -> None:
    env = mesh_env(ROOT, tmp_path / "home")
    stdout = run_mesh_cli("export-contract", "pharmacy.sites", env=env, cwd=ROOT, check=True).stdout
    out = tmp_path / "contracts" / "sites.odcs.yaml"
    run_mesh_cli("export-contract", "pharmacy.sites", "-o", str(out), env=env, cwd=ROOT, check=True)
    assert out.read_text() == stdout and from_yaml(stdout).ref == "pharmacy.sites"
    proc = run_mesh_cli("export-contract", "pharmacy.nope", env=env, cwd=ROOT)
    assert proc.returncode == 2 and "unknown product 'pharmacy.nope'" in proc.stderr


# --- end to end: a dbt domain and new products materialize with passing checks ----------------------------


@pytest.mark.slow
def test_scaffolded_dbt_domain_and_products_run_green(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")

    def mesh(*args: str) -> subprocess.CompletedProcess:
        return run_mesh_cli(*args, env=env, cwd=root, check=True)

    consumes = ["--consumes", "pharmacy.sites", "--consumes", "patients.patient_consent"]
    mesh("new-domain", "consent_watch", "--owner", "team:privacy", "--kind", "dbt", *consumes)
    mesh("new-product", "pharmacy", "site_summary")  # Python, inline source
    mesh("new-product", "patients", "patient_samples")  # dbt, inline source
    mesh("validate")
    mesh("seed", "--scale", "0.01")
    run = mesh("run", "--domain", "pharmacy", "--domain", "patients", "--domain", "consent_watch")
    for ref in ("consent_watch.example", "pharmacy.site_summary", "patients.patient_samples"):
        entry = json.loads(mesh("products", ref, "--json").stdout)
        assert entry["status"]["last_run"] == "published", (ref, run.stderr)
        assert entry["status"]["checks_failed"] == 0 and entry["status"]["checks_passed"] >= 4, entry["status"]
        assert entry["freshness"]["state"] == "fresh"
    assert json.loads(mesh("products", "consent_watch.example", "--json").stdout)["status"]["rows"] == 2
    _ruff_clean(root, "domains")
    # the domain's own generated test passes as `make test` runs it (pytest collects domains/)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("pytest")),
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",
            "domains/consent_watch",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr
