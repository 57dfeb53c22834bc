"""Governance enforced by the engine: attacks from inside consumer domains, each refused and audited.

A small mesh is materialized once; then patient_360 (a consumer of `patients.patient_accounts`
that may not see its pii) gets one dbt model per attack, and site_operations (made a consumer of
it for the test, not a pii reader) gets Python assets that attack through `ctx`. Each attack must
fail when it runs, name the domain, what it tried to reach and the agreement it would need, leave
an audit line, and put no raw pii value anywhere the consumer can keep or print it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml
from dagster import AssetKey

from mesh_platform.defs.domain_definitions import dbt_node_problems, domain_definitions
from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.governance.audit import AuditLog, Broken
from mesh_platform.governance.sandbox import Sandbox
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import MaterializedMesh, materialize

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox")]

PII = ("first_name", "last_name", "email", "phone")


@dataclass
class Attacked:
    mm: MaterializedMesh
    version: str  # the published file of patients.patient_accounts the attacks aim at
    raw: set[str]  # every raw pii value of it
    dbt_run: object
    python_run: object

    @property
    def home(self) -> Path:
        return self.mm.home

    def refusals(self) -> list[dict]:
        return [r for r in AuditLog(MeshHome(self.home)).records() if r["event"] == "sandbox_refusal"]


# one model per attack class; {home}, {version} and {staging} are filled in per test mesh
DBT_ATTACKS = {
    "literal_path": "select * from read_csv('{home}/sources/patients/patients.csv')",
    "glob": "select * from read_parquet('{home}/products/*/patient_accounts/*.parquet')",
    "concatenation": "select * from read_parquet('{home}/prod' || 'ucts/patients/patient_accounts/' || '*.parquet')",
    "jinja_variable": (
        "{{% set p = env_var('MESH_PRODUCT_STAGING', '') ~ '/../../../products/patients/patient_accounts/' %}}\n"
        "select * from read_parquet('{{{{ p }}}}{version_name}')"
    ),
    "macro": "select * from read_csv({{{{ leaked_path() }}}})",
    "external_location": "select * from {{{{ source('patient_360', 'leak') }}}}",
    "attach": (
        "{{% call statement('attach') %}}attach '{{{{ '{home}/warehouse/' ~ 'patients.duckdb' }}}}' as leak "
        "(read_only){{% endcall %}}\nselect * from leak.main.raw_patients"
    ),
    "forged_audit": (
        "{{% call statement('forge') %}}copy (select 'patients' as consumer) to '{home}/audit/reads.jsonl' "
        "(format json){{% endcall %}}\nselect 1 as x"
    ),
}
# secrets the operator's environment holds while the attacked domain runs, and a model that renders them
ENV_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "attack-aws-secret-0123456789",
    "ANALYTICS_DB_URL": "postgresql://reader:attack-pw-0123@db.example.com/analytics",
}
ENV_ATTACK = (
    "{{ config(materialized='view') }}\n"
    + "select "
    + ", ".join(f'\'{{{{ env_var("{name}", "absent") }}}}\' as v{i}' for i, name in enumerate(ENV_SECRETS))
    + "\n"
)
# what each attack's refusal names as its target
DBT_TARGETS = {
    "literal_path": "sources/patients/patients.csv",
    "glob": "products/*/patient_accounts/*.parquet",
    "concatenation": "products/patients/patient_accounts/*.parquet",
    "jinja_variable": "/../../../products/patients/patient_accounts/",
    "macro": "sources/patients/*.csv",
    "external_location": "products/patients/patient_accounts/",
    "attach": "warehouse/patients.duckdb",
    "forged_audit": "audit/reads.jsonl",
}

PYTHON_ATTACKS = """

@internal("leak_through_con", description="attack: read the producer's file through ctx.con", reads=[])
def leak_through_con(ctx: AssetContext) -> str:
    ctx.con.execute("create table main.leak_con as select * from read_parquet('{version}')")
    return "select 1 as x"


@internal("leak_by_identity", description="attack: claim another identity", reads=["patients.patient_accounts"])
def leak_by_identity(ctx: AssetContext) -> str:
    ctx.domain = "patients"
    accounts = ctx.read("patients.patient_accounts")
    ctx.con.execute(f"create or replace table main.leak_identity as select * from {{accounts}}")
    return "select 1 as x"
"""


def _raw_pii(version: str) -> set[str]:
    with duckdb.connect() as con:
        rows = con.execute(f"select {', '.join(PII)} from read_parquet('{version}')").fetchall()
    return {str(v) for row in rows for v in row if v}


def _grant_site_operations(root: Path) -> None:
    """site_operations becomes a consumer of patient_accounts (not a pii reader)."""
    patients = root / "domains" / "patients" / "domain.yaml"
    text = patients.read_text()
    patients.write_text(
        text.replace("consumers: [patient_360, scheduling]", "consumers: [patient_360, scheduling, site_operations]")
    )
    site = root / "domains" / "site_operations" / "domain.yaml"
    data = yaml.safe_load(site.read_text())
    site.write_text(site.read_text().replace("consumes:\n", "consumes:\n  - patients.patient_accounts\n", 1))
    assert "patients.patient_accounts" in yaml.safe_load(site.read_text())["consumes"], data


def _refusal(project: Path, domain: str) -> str:
    """The message of the error that keeps `domain` of `project` from loading."""
    with pytest.raises(MeshDefinitionError) as err:
        domain_definitions(domain, Mesh.load(MeshProject.discover(project)))
    return str(err.value)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Attacked:
    mm = materialize(tmp_path_factory.mktemp("attacks"))
    assert mm.run.returncode == 0, mm.run.stderr  # type: ignore[attr-defined]
    current = json.loads((mm.home / "products/patients/patient_accounts/current.json").read_text())
    version = current["path"]
    fill = {"home": mm.home, "version": version, "version_name": Path(version).name}

    dbt = mm.root / "dbt_projects" / "patient_360"
    for name, sql in DBT_ATTACKS.items():
        (dbt / "models" / "marts" / f"attack_{name}.sql").write_text(sql.format(**fill) + "\n")
    (dbt / "macros" / "leaked_path.sql").write_text(
        "{% macro leaked_path() %}'" + str(mm.home) + "/sources/patients/' || '*.csv'{% endmacro %}\n"
    )
    (dbt / "models" / "marts" / "_attack_sources.yml").write_text(
        yaml.safe_dump(
            {
                "version": 2,
                "sources": [
                    {
                        "name": "patient_360",
                        "tables": [{"name": "leak", "meta": {"external_location": version}}],
                    }
                ],
            }
        )
    )
    (dbt / "models" / "attack_env.sql").write_text(ENV_ATTACK)
    mm.mesh("prepare", check=True)
    dbt_run = mm.mesh_with(ENV_SECRETS, "run", "--domain", "patient_360")

    _grant_site_operations(mm.root)
    code = mm.root / "domains" / "site_operations" / "assets.py"
    code.write_text(
        code.read_text().replace(
            "from mesh_platform.sdk import AssetContext, product",
            "from mesh_platform.sdk import AssetContext, internal, product",
        )
        + PYTHON_ATTACKS.format(version=version)
    )
    python_run = mm.mesh("run", "--domain", "site_operations")
    return Attacked(mm, version, _raw_pii(version), dbt_run, python_run)


def _leaks(home: Path, domain: str, raw: set[str], outputs: list[str]) -> list[str]:
    """Raw pii values found in what `domain` keeps (its warehouse, products, projections, logs) or
    printed."""
    found: list[str] = []

    def scan(where: str, values: list) -> None:
        found.extend(f"{where}: {v}" for v in values if v is not None and str(v) in raw)

    with duckdb.connect(str(home / "warehouse" / f"{domain}.duckdb"), read_only=True) as con:
        relations = con.execute("select schema_name, table_name from duckdb_tables()").fetchall()
        relations += con.execute("select schema_name, view_name from duckdb_views() where not internal").fetchall()
        for schema, name in relations:
            try:
                rows = con.execute(f'select * from "{schema}"."{name}"').fetchall()
            except duckdb.Error:
                continue  # a view over a file that is gone
            scan(f"{schema}.{name}", [v for row in rows for v in row])
    with duckdb.connect() as con:
        for folder in (home / "products" / domain, home / "governed" / domain, home / "staging" / domain):
            for path in folder.rglob("*.parquet") if folder.exists() else []:
                rows = con.execute(f"select * from read_parquet('{path}')").fetchall()
                scan(str(path), [v for row in rows for v in row])
    texts = [*outputs]
    for folder in (home / "logs", home / "dbt-runs", home / "alerts"):
        texts += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    found += [f"text: {value}" for value in raw for text in texts if value in text]
    return found


@pytest.mark.parametrize("attack", sorted(DBT_ATTACKS))
def test_dbt_attack_is_refused_by_the_engine_and_audited(attacked: Attacked, attack: str) -> None:
    run = attacked.dbt_run
    assert run.returncode == 1, run.stderr
    target = DBT_TARGETS[attack]
    audited = [r for r in attacked.refusals() if target in r["target"] and r["consumer"] == "patient_360"]
    assert audited, f"no sandbox_refusal audit line names {target}"
    line = next(line for line in run.stderr.splitlines() if "sandbox: domain patient_360" in line and target in line)
    assert "which it may not" in line
    assert any(word in line for word in ("consumes", "source(", "governed read", "own warehouse", "cannot change"))
    assert _leaks(attacked.home, "patient_360", attacked.raw, [run.stdout, run.stderr]) == []


def test_a_model_cannot_render_the_secrets_of_the_environment_it_runs_in(attacked: Attacked) -> None:
    """dbt's `env_var()` reads the step's environment, which holds the operator's secrets (cloud keys,
    database URLs); a model that selects them would keep them in a table its domain reads. The step
    builds with them out of the environment: the model renders its defaults, and no secret is in
    the domain's warehouse, files, logs or output."""
    run = attacked.dbt_run
    with duckdb.connect(str(attacked.home / "warehouse" / "patient_360.duckdb"), read_only=True) as con:
        assert con.execute("select * from attack_env").fetchall() == [("absent", "absent")]
    leaks = _leaks(attacked.home, "patient_360", set(ENV_SECRETS.values()), [run.stdout, run.stderr])
    assert leaks == []


def test_the_product_of_the_attacked_domain_still_publishes_masked(attacked: Attacked) -> None:
    with duckdb.connect() as con:
        path = json.loads((attacked.home / "products/patient_360/patient_journey/current.json").read_text())["path"]
        emails = [r[0] for r in con.execute(f"select email from read_parquet('{path}')").fetchall()]
    assert emails and all(e is None or e.startswith("tok_") for e in emails)


def test_python_attack_through_ctx_con_is_refused(attacked: Attacked) -> None:
    run = attacked.python_run
    assert run.returncode == 1
    assert "sandbox: domain site_operations tried to reach" in run.stderr and attacked.version in run.stderr
    assert "products[0].access.consumers" not in run.stderr  # it is granted: the agreement says how to read it
    assert "ctx.read('patients.patient_accounts')" in run.stderr
    assert any(attacked.version in r["target"] for r in attacked.refusals() if r["consumer"] == "site_operations")
    assert _leaks(attacked.home, "site_operations", attacked.raw, [run.stdout, run.stderr]) == []


def test_python_code_cannot_read_as_another_domain(attacked: Attacked) -> None:
    """ctx.domain is the platform's: setting it changes nothing, the projection was made for site_operations."""
    with duckdb.connect(str(attacked.home / "warehouse/site_operations.duckdb"), read_only=True) as con:
        emails = [r[0] for r in con.execute("select email from main.leak_identity").fetchall()]
    assert emails and all(e is None or e.startswith("tok_") for e in emails)
    reads = [
        r for r in AuditLog(MeshHome(attacked.home)).records() if r.get("via") == "site_operations.leak_by_identity"
    ]
    assert reads and {r["consumer"] for r in reads} == {"site_operations"} and reads[0]["masked_columns"]


@pytest.mark.parametrize(
    ("code", "uses"),
    [
        ("import duckdb\nLEAK = duckdb.connect('{home}/warehouse/patients.duckdb', read_only=True)\n", "duckdb"),
        ("LEAK = open('{home}/sources/patients/patients.csv').read()\n", "open"),
        ("import pandas as pd\nLEAK = pd.read_parquet('{version}')\n", "pandas.read_parquet"),
        ("from pathlib import Path\nLEAK = Path('{version}').read_bytes()\n", "read_bytes"),
        (
            "from mesh_platform.governance.read import authorize, governed_sql\n"
            "LEAK = lambda mesh: governed_sql(authorize(mesh, 'patients.patient_accounts', 'patients'), 'k')\n",
            "mesh_platform.governance.read",
        ),
        (
            "from mesh_platform.governance.audit import audit_read\n"
            "LEAK = lambda home: audit_read(home, 'read', consumer='patients')\n",
            "mesh_platform.governance.audit",
        ),
        ("LEAK = lambda ctx: ctx.read.__globals__['Mesh']\n", "__globals__"),
    ],
    ids=["duckdb_connect", "open", "pandas", "pathlib", "sdk_identity_spoofing", "forged_audit_python", "globals"],
)
def test_python_direct_access_refuses_the_domain_unless_declared(project: Path, code: str, uses: str) -> None:
    home = Path("/tmp/home")
    assets = project / "domains" / "site_operations" / "assets.py"
    body = code.format(home=home, version=home / "v.parquet").replace("LEAK = ", "return ")
    # inside a function: the attack must be refused before anything runs, not fail by running
    attack = "def leak():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    assets.write_text(assets.read_text() + "\n\n" + attack)
    message = _refusal(project, "site_operations")
    assert (
        "python-direct-access" in message and f"`{uses}`" in message and "domains/site_operations/assets.py" in message
    )
    descriptor = project / "domains" / "site_operations" / "domain.yaml"
    descriptor.write_text(
        descriptor.read_text()
        + f"code_exceptions:\n  - {{file: assets.py, uses: {uses}, reason: the test declares it for review}}\n"
    )
    domain_definitions("site_operations", Mesh.load(MeshProject.discover(project)))  # declared: it loads


def test_an_edited_audit_line_is_detected(attacked: Attacked, tmp_path: Path) -> None:
    home = MeshHome(tmp_path / "home")
    log = AuditLog(home)
    for i in range(4):
        log.append("read", consumer="patient_360", product="patients.patient_accounts", version=str(i))
    assert log.verify() == (4, None)
    lines = log.path.read_text().splitlines()
    lines[2] = lines[2].replace('"consumer": "patient_360"', '"consumer": "patients"')
    log.path.write_text("\n".join(lines) + "\n")
    count, broken = log.verify()
    assert count == 2 and broken is not None and broken.line == 3 and "edited" in broken.reason
    proc = attacked.mm.mesh_with({"MESH_HOME": str(home.path)}, "audit", "--verify")
    assert proc.returncode == 1 and ":3:" in proc.stderr
    assert attacked.mm.mesh("audit", "--verify").returncode == 0  # the attacked mesh's own log holds


def test_a_removed_or_appended_audit_line_is_detected(tmp_path: Path) -> None:
    home = MeshHome(tmp_path / "home")
    log = AuditLog(home)
    for i in range(3):
        log.append("read", consumer="c", product="d.p", version=str(i))
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert log.verify()[1].line == 2  # type: ignore[union-attr]
    forged = json.loads(lines[2])
    forged.update(seq=4, prev=forged["hash"], consumer="patients")
    log.path.write_text("\n".join([*lines, json.dumps(forged)]) + "\n")
    assert log.verify()[1].line == 4  # type: ignore[union-attr]


def test_flagged_code_is_refused_before_it_runs(project: Path, tmp_path: Path) -> None:
    """The scan reads the code before importing it: a flagged module's top level never runs."""
    marker = tmp_path / "ran"
    assets = project / "domains" / "site_operations" / "assets.py"
    assets.write_text(assets.read_text() + f"\nopen({str(marker)!r}, 'w').write('the attack ran')\n")
    with pytest.raises(MeshDefinitionError, match="python-direct-access"):
        domain_definitions("site_operations", Mesh.load(MeshProject.discover(project)))
    assert not marker.exists()


@pytest.mark.parametrize("landing", ["../sources/patients", "..", "/tmp", "appointments/../../audit", "Appointments"])
def test_a_landing_folder_named_by_a_path_refuses_the_domain(project: Path, landing: str) -> None:
    """`landing=` opens a folder to the domain's sandbox, read and write: a path there (`..`, absolute)
    would open another domain's sources, or MESH_HOME with its keys and audit log, to plain SQL."""
    assets = project / "domains" / "site_operations" / "assets.py"
    attack = (
        "\n\nfrom mesh_platform.sdk import internal\n\n\n"
        f"@internal('leak', description='ingest', landing={landing!r})\n"
        "def leak(ctx):\n"
        "    return f\"select * from read_csv('{ctx.landing_dir}/patients.csv')\"\n"
    )
    assets.write_text(assets.read_text() + attack)
    message = _refusal(project, "site_operations")
    assert "[landing-name]" in message and "domains/site_operations/assets.py" in message
    home = MeshHome(project.parent / "home")
    with pytest.raises(ValueError, match="not a folder name"):  # the sandbox refuses it too, whoever asks
        Sandbox.for_step(home, "site_operations", home.path / "staging" / "site_operations" / "run", landing=[landing])


def test_dbt_python_models_and_seeds_refuse_the_domain(project: Path, tmp_path: Path) -> None:
    """dbt runs Python models and reads seeds in the step's process, where the sandbox does not see
    the file they read: a Python model reading another domain's sources, or a seed that is a link to
    them, must not build."""
    dbt = project / "dbt_projects" / "patient_360"
    (dbt / "models" / "attack").mkdir()
    (dbt / "models" / "attack" / "leak_py.py").write_text(
        "def model(dbt, session):\n"
        "    import pandas as pd\n\n"
        "    return pd.read_csv('../../sources/patients/patients.csv')\n"
    )
    raw = tmp_path / "home" / "sources" / "patients" / "patients.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("patient_id,email\nP1,someone@example.com\n")
    (dbt / "seeds").mkdir()
    (dbt / "seeds" / "lookup.csv").symlink_to(raw)
    message = _refusal(project, "patient_360")
    assert "dbt_projects/patient_360/models/attack/leak_py.py: leak_py: [dbt-python-model]" in message
    assert "dbt_projects/patient_360/seeds/lookup.csv: lookup: [dbt-seed]" in message


def test_lines_cut_from_the_end_of_the_audit_log_are_detected(tmp_path: Path) -> None:
    """Cutting the last lines (a refusal, say) leaves a chain that holds: the signed end names the gap,
    and the next line, chained to the signed end, does not hide it."""
    log = AuditLog(MeshHome(tmp_path / "home"))
    for i in range(5):
        log.append("read", consumer="c", product="d.p", version=str(i))
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join(lines[:3]) + "\n")
    assert log.verify() == (3, Broken(4, "lines 4 to 5 were removed from the end of the log"))
    log.append("refused", consumer="c", product="d.p")
    count, broken = log.verify()
    assert count == 3 and broken is not None and broken.line == 4
    log.path.unlink()
    assert log.verify()[1] is not None  # the whole log removed, its signed end left
    log.path.write_text("\n".join(lines) + "\n")
    head = json.loads(log.head_path.read_text())
    log.head_path.write_text(json.dumps({**head, "seq": 5}))  # the end rewritten without the key
    assert log.verify()[1] == Broken(5, "the log's signed end (head.json) was edited or forged")


def test_a_materialization_of_a_project_refuses_the_domain(project: Path) -> None:
    """A materialization can submit Python (`statement(..., language='python')`), which dbt runs in the
    step's process, outside the sandbox, for a model that reads as plain SQL; one named like dbt's own
    would replace it for every model."""
    dbt = project / "dbt_projects" / "patient_360"
    (dbt / "macros" / "own.sql").write_text(
        "{% materialization mine, adapter='duckdb' %}\n"
        "  {%- set target_relation = this.incorporate(type='table') -%}\n"
        "  {% call statement('main', language='python') -%}\n"
        "def model(dbt, session): return open('/etc/hostname').read()\n"
        "  {%- endcall %}\n"
        "  {{ return({'relations': [target_relation]}) }}\n"
        "{% endmaterialization %}\n"
        "{% materialization view, adapter='duckdb' %}{{ return(materialization_view_default()) }}\n"
        "{% endmaterialization %}\n"
    )
    (dbt / "models" / "innocent.sql").write_text("{{ config(materialized='mine') }} select 1 as x\n")
    message = _refusal(project, "patient_360")
    for name in ("materialization_mine_duckdb", "materialization_view_duckdb"):
        assert f"dbt_projects/patient_360/macros/own.sql: {name}: [dbt-materialization]" in message


def test_a_macro_named_like_a_materialization_refuses_the_domain_before_its_python_runs(
    project: Path, tmp_path: Path
) -> None:
    """dbt lets a macro submit Python only from a materialization, which it recognises by the word
    in the macro's id: a helper named `audit_materialization_note`, called from a plain SQL model,
    ran Python in the process that compiled the project (`mesh validate`, a definitions load) and
    in the step, outside the sandbox. The domain is refused, and the Python never runs."""
    marker = tmp_path / "python-ran"
    dbt = project / "dbt_projects" / "patient_360"
    (dbt / "macros" / "notes.sql").write_text(
        "{% macro audit_materialization_note() %}{% if execute %}\n"
        "  {% call statement('note', language='python') %}\n"
        f"open({str(marker)!r}, 'w').write(open('/etc/hostname').read())\n"
        "def model(dbt, session): return session.sql('select 1 as x')\n"
        "  {% endcall %}\n"
        "{% endif %}{% endmacro %}\n"
    )
    (dbt / "models" / "innocent.sql").write_text("{{ audit_materialization_note() }} select 1 as x\n")
    message = _refusal(project, "patient_360")
    assert "dbt_projects/patient_360/macros/notes.sql: audit_materialization_note: [dbt-materialization]" in message
    assert "contains the word 'materialization'" in message
    assert not marker.exists()


def test_a_project_parsed_outside_a_step_never_renders_a_secret(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `config(meta=...)`, a yml description or a parse error is rendered at parse, in whatever
    process loads the definitions (the UI's, `mesh validate`), and what it renders reaches the UI:
    the description and column schema of the asset, the code location's error. Encoded (`| reverse`,
    one character at a time), no scan of the text would know the secret: the parse runs in a
    process whose environment does not hold it, so `env_var()` renders its default."""
    secret = "https://hooks.example.com/services/T0/B0/attack-0123"
    monkeypatch.setenv("MESH_ALERT_WEBHOOK", secret)
    encoded = {"plain": secret, "reversed": secret[::-1], "spaced": " ".join(secret)}
    dbt = project / "dbt_projects" / "patient_360"
    hook = "env_var('MESH_ALERT_WEBHOOK', '')"
    (dbt / "models" / "noted.sql").write_text(
        f"{{{{ config(meta={{'r': {hook} | reverse, 'c': {hook} | list | join(' ')}}) }}}}\nselect 1 as x\n"
    )
    (dbt / "models" / "_noted.yml").write_text(
        "version: 2\nmodels:\n  - name: noted\n"
        f'    description: "d:{{{{ {hook} | reverse }}}}"\n'
        f"    columns:\n      - name: x\n        description: \"c:{{{{ {hook} | list | join(' ') }}}}\"\n"
    )
    graph = domain_definitions("patient_360", Mesh.load(MeshProject.discover(project))).resolve_asset_graph()
    node = graph.get(AssetKey(["patient_360", "noted"]))
    shown = f"{node.description} {node.metadata.get('dagster/column_schema')}"
    assert node.description == "d:" and "c:" in shown
    manifest = (dbt / "target" / "manifest.json").read_text()
    assert [name for name, value in encoded.items() if value in shown or value in manifest] == []

    (dbt / "models" / "noted.sql").write_text(
        f"{{{{ exceptions.raise_compiler_error('settings: ' ~ {hook} ~ ' ' ~ ({hook} | reverse)) }}}}\nselect 1 as x\n"
    )
    message = _refusal(project, "patient_360")
    assert "dbt_projects/patient_360/models/noted.sql: [dbt-parse]" in message
    assert [name for name, value in encoded.items() if value in message] == []


def test_a_manifest_that_holds_a_secret_refuses_the_domain(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest made where the secret was in the environment (dbt run by hand) does not load,
    and the refusal does not repeat the value."""
    secret = "postgresql://admin:attack-pw-0123@127.0.0.1/postgres"
    monkeypatch.setenv("MESH_WAREHOUSE_URL", secret)
    mesh = Mesh.load(MeshProject.discover(project))
    dbt = project / "dbt_projects" / "patient_360"
    manifest = {"nodes": {"model.patient_360.noted": {"name": "noted", "config": {"meta": {"where": secret}}}}}
    problems = dbt_node_problems(mesh, "patient_360", dbt, manifest)
    assert [(p.file, p.field, p.rule) for p in problems] == [
        ("dbt_projects/patient_360", "MESH_WAREHOUSE_URL", "dbt-secret")
    ]
    assert "attack-pw" not in str(problems)


def test_every_macro_of_a_package_named_like_a_materialization_is_refused(project: Path) -> None:
    """The package's name is part of the id dbt reads the word in (`macro.<package>.<name>`)."""
    mesh = Mesh.load(MeshProject.discover(project))
    dbt = project / "dbt_projects" / "patient_360"
    macros = {
        f"macro.{package}.{name}": {"name": name, "package_name": package, "original_file_path": f"macros/{name}.sql"}
        for package, name in [
            ("materializations_lab", "note"),
            ("patient_360", "last_by"),
            ("dbt", "materialization_x"),
        ]
    }
    problems = dbt_node_problems(mesh, "patient_360", dbt, {"nodes": {}, "macros": macros})
    assert [(p.file, p.field, p.rule) for p in problems] == [
        ("dbt_projects/patient_360/macros/note.sql", "note", "dbt-materialization")
    ]


@pytest.mark.parametrize("linked", ["landing/feed", "sources/site_operations", "landing"])
def test_a_folder_of_the_sandbox_that_is_a_link_is_refused(tmp_path: Path, linked: str) -> None:
    """DuckDB follows links in allowed_directories: a landing or sources folder that is a link (or
    under one) would allow its target, e.g. MESH_HOME with its keys."""
    home = MeshHome(tmp_path / "home")
    for folder in ("landing/feed", "sources/site_operations", "staging/site_operations/run", "sources/patients"):
        (home.path / folder).mkdir(parents=True, exist_ok=True)
    (home.path / "audit.key").write_text("secret")
    target = home.path / linked
    shutil.rmtree(target)
    target.symlink_to(home.path if linked != "landing" else home.path / "sources")
    if linked == "landing":
        (home.path / "sources" / "feed").mkdir()
    with pytest.raises(ValueError, match="a link"):
        Sandbox.for_step(home, "site_operations", home.path / "staging" / "site_operations" / "run", landing=["feed"])


def test_a_malformed_or_removed_signed_end_is_reported_and_never_replaced(tmp_path: Path) -> None:
    """A signed end that is not one (huge numbers, deep nesting, not an object) verifies as forged
    without a traceback and appends still record; and neither a forged nor a removed end is replaced
    by a valid one, which would hide lines cut along with it."""
    log = AuditLog(MeshHome(tmp_path / "home"))
    for i in range(4):
        log.append("read", consumer="c", product="d.p", version=str(i))
    lines = log.path.read_text().splitlines()
    non_ascii = '{"seq": 5, "hash": "\\ud800", "mac": "\\u00e9"}'  # compare_digest refuses such str
    for forged in ('{"seq": 1e999, "hash": "x", "mac": "y"}', "[" * 100_000 + "]" * 100_000, "[1]", non_ascii):
        log.head_path.write_text(forged)
        log.append("refused", consumer="c", product="d.p")
        assert log.verify()[1] == Broken(log.verify()[0], "the log's signed end (head.json) was edited or forged")
    log.path.write_text("\n".join(lines[:2]) + "\n")  # cut, the end removed, then a new decision
    log.head_path.unlink()
    log.append("refused", consumer="c", product="d.p")
    assert log.verify() == (3, Broken(3, "the log's signed end (head.json) is missing"))
    edited = json.loads(lines[1]) | {"hash": "\u00e9\ud800"}
    log.path.write_text(f"{lines[0]}\n{json.dumps(edited)}\n")
    assert log.verify()[1] == Broken(2, "its content does not match its signature (the line was edited)")
