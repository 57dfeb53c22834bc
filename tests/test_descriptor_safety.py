"""Hostile descriptors: each is a located problem, found fast and in bounded memory, and breaks only
its own domain. Names that are SQL keywords are refused at validation."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import duckdb
import pytest

from mesh_platform.defs.domain_definitions import build_domain, domain_definitions
from mesh_platform.descriptor.load import MAX_BYTES, read_descriptor
from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.descriptor.reserved_words import DUCKDB_RESERVED, POSTGRES_RESERVED
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import mesh_env, run_mesh_cli

PHARMACY = "domains/pharmacy/domain.yaml"
INDEPENDENT = {"patients", "scheduling", "patient_360"}  # they consume nothing of pharmacy's

ALIAS_BOMB = """
          a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
          b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
          c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
          d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
          e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
          f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
          g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
          h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
          i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _path(project: Path) -> Path:
    return project / PHARMACY


def _load(project: Path) -> Mesh:
    """The mesh (how fast a bad descriptor is refused is measured by its memory here, its time by
    `python -m bench`: timed assertions fail on a busy machine)."""
    return Mesh.load(MeshProject.discover(project))


def _peak_bytes(path: Path) -> int:
    """The most memory (Python's allocations) reading one descriptor took."""
    tracemalloc.start()
    try:
        read_descriptor(path, PHARMACY)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _only(mesh: Mesh, rule: str):
    matching = [p for p in mesh.problems if p.rule == rule]
    assert len(matching) == 1, [str(p) for p in mesh.problems]
    return matching[0]


def _assert_isolated(mesh: Mesh) -> None:
    """pharmacy is refused; the domains that do not consume it load with no problem."""
    assert "pharmacy" not in mesh.descriptors
    assert set(mesh.descriptors) >= INDEPENDENT
    assert not [p for p in mesh.problems if p.domain in INDEPENDENT]


def test_a_non_utf8_byte_is_a_located_problem_of_its_domain_only(project: Path) -> None:
    text = _path(project).read_bytes()
    _path(project).write_bytes(text.replace(b"Site ZIP code", b"Site ZIP \xff code"))
    mesh = _load(project)
    problem = _only(mesh, "utf-8")
    line = text[: text.index(b"Site ZIP code")].count(b"\n") + 1
    assert (problem.file, problem.line) == (PHARMACY, line)
    assert "ff" in problem.message and str(problem).startswith(f"{PHARMACY}:{line}: [utf-8]")
    _assert_isolated(mesh)


def test_a_duplicate_key_is_refused_not_silently_the_last(project: Path) -> None:
    """`classification: pii` then `classification: public`: PyYAML keeps public (served unmasked)."""
    text = _path(project).read_text()
    pii = "{name: site_name, type: string, description: Display name, classification: pii, classification: public}"
    _path(project).write_text(text.replace(pii.replace("pii, classification: ", ""), pii))
    mesh = _load(project)
    problem = _only(mesh, "duplicate-key")
    assert problem.field == "products[0].columns[1].classification"
    assert problem.line == text[: text.index("{name: site_name")].count("\n") + 1
    assert "first at line" in problem.message
    _assert_isolated(mesh)


def test_duplicate_keys_anywhere_are_each_reported(project: Path) -> None:
    text = _path(project).read_text()
    text = text.replace("kwargs: {column: site_id}", "kwargs: {column: site_id, column: zip}")
    _path(project).write_text(text + 'schedule: "0 7 * * *"\n')
    mesh = _load(project)
    fields = {p.field for p in mesh.problems if p.rule == "duplicate-key"}
    assert fields == {"schedule", "products[0].expectations[0].kwargs.column"}


def test_an_alias_bomb_is_refused_fast_in_bounded_memory(project: Path) -> None:
    """Ten lines that expand to 9^9 values: the loader stops at its bound without building them."""
    text = _path(project).read_text()
    bomb = "      - type: expect_column_values_to_be_in_set\n        kwargs:\n          column: site_id"
    bomb += ALIAS_BOMB + "          value_set: *i\n"
    _path(project).write_text(text.replace("    expectations:\n", "    expectations:\n" + bomb, 1))
    mesh = _load(project)
    peak = _peak_bytes(_path(project))
    problem = _only(mesh, "alias-expansion")
    assert problem.file == PHARMACY and problem.line and problem.field.startswith("products[0].expectations[0].kwargs")
    assert peak < 50 * 2**20, peak
    _assert_isolated(mesh)


def test_aliases_that_expand_within_bounds_are_ordinary_yaml(project: Path) -> None:
    text = _path(project).read_text()
    text = text.replace('    access:\n      consumers: ["*"]\n', '    access: &everyone\n      consumers: ["*"]\n')
    text = text.replace("    access:\n      consumers: [immunizations, site_operations]\n", "    access: *everyone\n")
    assert text.count("everyone") == 2
    _path(project).write_text(text)
    mesh = _load(project)
    assert mesh.problems == []
    assert all(p.access.consumers == ["*"] for p in mesh.descriptors["pharmacy"].products)


@pytest.mark.parametrize(
    ("addition", "rule"),
    [
        ("x: &r [1, *r]\n", "alias-expansion"),  # an alias inside what it names: a cycle
        ("x: " + "[" * 900 + "]" * 900 + "\n", "nesting-depth"),  # libyaml would accept it (its limit is 1000)
        ("x: &d " + "[" * 20 + "]" * 20 + "\ny: " + "[" * 20 + "*d" + "]" * 20 + "\n", "alias-expansion"),
        ("x: 2024-13-45\n", "yaml"),  # a date YAML cannot build
        ("x: " + "9" * 5000 + "\n", "yaml"),  # an integer Python refuses to convert
        ('x: "\x00"\n', "yaml"),
        ('x: "a\\0b"\n', "nul-character"),  # escaped: YAML builds the NUL (generated code would not compile)
        ('x: ["\\u0000"]\n', "nul-character"),
        ("---\nsecond: document\n", "yaml"),
    ],
)
def test_hostile_yaml_is_a_located_problem(project: Path, addition: str, rule: str) -> None:
    text = _path(project).read_text()
    _path(project).write_text(text + addition)
    mesh = _load(project)
    problem = _only(mesh, rule)
    assert problem.file == PHARMACY and text.count("\n") < problem.line <= (text + addition).count("\n") + 1
    _assert_isolated(mesh)


def test_an_oversized_file_is_refused_without_reading_it_all(project: Path) -> None:
    with open(_path(project), "ab") as file:
        file.write(b"# padding\n" * (MAX_BYTES // 10 + 1) + b"x" * (64 * 2**20))  # 64 MB on one line
    mesh = _load(project)
    peak = _peak_bytes(_path(project))
    problem = _only(mesh, "descriptor-size")
    assert problem.line and "256 KiB" in problem.message
    assert peak < 4 * MAX_BYTES, peak
    _assert_isolated(mesh)


def test_every_rule_problem_has_a_line(project: Path) -> None:
    text = _path(project).read_text()
    text = text.replace("kwargs: {column: site_id}", "kwargs: {column: site_code}")  # expectation-column
    stock = "consumers: [immunizations, site_operations]"
    _path(project).write_text(text.replace(stock, stock + "\n      pii_readers: [patients]"))
    mesh = _load(project)
    by_rule = {p.rule: p for p in mesh.problems}
    assert {"expectation-column", "pii-reader-is-consumer"} <= set(by_rule), [str(p) for p in mesh.problems]
    lines = text.splitlines()
    assert "site_code" in lines[by_rule["expectation-column"].line - 1]
    assert all(p.line for p in mesh.problems)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("name: sites", "name: order", "products[0].name"),
        ("{name: zip,", "{name: group,", "products[0].columns[2].name"),
        ("{name: state,", "{name: user,", "products[0].columns[3].name"),  # reserved in PostgreSQL only
        ("{name: state,", "{name: left,", "products[0].columns[3].name"),
    ],
)
def test_reserved_sql_keywords_are_refused_as_names(project: Path, old: str, new: str, field: str) -> None:
    _path(project).write_text(_path(project).read_text().replace(old, new, 1))
    mesh = _load(project)
    problem = _only(mesh, "name-not-reserved")
    assert (problem.file, problem.field) == (PHARMACY, field)
    assert problem.line and "reserved SQL keyword" in problem.message


def test_keyword_like_names_the_engines_accept_are_allowed(project: Path) -> None:
    text = _path(project).read_text()
    for old, new in (("site_name", "name"), ("zip", "value"), ("state", "type"), ("opened_on", "status")):
        text = text.replace(f"{{name: {old},", f"{{name: {new},")
    _path(project).write_text(text)
    mesh = _load(project)
    assert not [p for p in mesh.problems if p.domain == "pharmacy"], [str(p) for p in mesh.problems]


def test_reserved_word_lists_match_duckdb() -> None:
    with duckdb.connect() as con:
        rows = con.execute(
            "select keyword_name from duckdb_keywords() where keyword_category in ('reserved', 'type_function')"
        ).fetchall()
    assert {r[0] for r in rows} == DUCKDB_RESERVED


@pytest.mark.slow
def test_reserved_word_lists_match_postgresql() -> None:
    from tests.pg_support import postgres_or_skip

    with postgres_or_skip() as server:
        rows = server.query("select word from pg_get_keywords() where catcode in ('R', 'T')")
    assert {r[0] for r in rows} == POSTGRES_RESERVED


@pytest.mark.parametrize(
    ("old", "new", "rule", "field"),
    [
        (
            "kwargs: {column: site_id}",
            "kwargs: {column: [site_id]}",
            "expectation-kwargs",
            "products[0].expectations[0].kwargs",
        ),
        ("freshness: 26h", "freshness: 0m", "value-error", "products[1].freshness"),
        ("freshness: 26h", "freshness: 99999999999d", "value-error", "products[1].freshness"),
        ("freshness: 26h", "retention: 30x", "value-error", "products[1].retention"),
        ("freshness: 26h", "retention: 0d", "value-error", "products[1].retention"),
    ],
)
def test_values_dagster_or_the_checks_would_choke_on(project: Path, old: str, new: str, rule: str, field: str) -> None:
    _path(project).write_text(_path(project).read_text().replace(old, new, 1))
    mesh = _load(project)
    problem = _only(mesh, rule)
    assert problem.field == field and problem.line


def test_a_schedule_dagster_refuses_is_a_problem_of_its_domain(project: Path) -> None:
    text = _path(project).read_text()
    _path(project).write_text(text.replace('schedule: "0 4 * * *"', 'schedule: "61 * * * *"'))
    mesh = _load(project)
    with pytest.raises(MeshDefinitionError) as raised:
        build_domain(mesh, "pharmacy")
    (problem,) = raised.value.problems
    assert (problem.rule, problem.field) == ("schedule-cron", "schedule")
    assert domain_definitions("scheduling", mesh).resolve_job_def("scheduling") is not None


def test_code_locations_of_other_domains_load_beside_a_broken_descriptor(project: Path) -> None:
    """Each domain's `definitions.py` (its code location in the UI) calls `domain_definitions`."""
    _path(project).write_bytes(_path(project).read_bytes() + b'x: "\xfe"\n')
    mesh = _load(project)
    for domain in ("scheduling", "patients"):
        assert domain_definitions(domain, mesh).resolve_job_def(domain) is not None
    with pytest.raises(MeshDefinitionError) as raised:
        domain_definitions("pharmacy", mesh)
    assert raised.value.problems[0].rule == "utf-8"


@pytest.mark.slow
def test_a_dbt_source_name_dagster_cannot_use_is_a_validate_problem(project: Path, tmp_path: Path) -> None:
    dbt = project / "dbt_projects" / "patient_360" / "models" / "marts"
    sources = dbt / "_sources.yml"
    sources.write_text(
        sources.read_text()
        + '  - name: patient_360\n    schema: main\n    tables:\n      - name: "raw visits"\n        identifier: raw\n'
    )
    (dbt / "visits_stage.sql").write_text("select 1 as x from {{ source('patient_360', 'raw visits') }}\n")
    proc = run_mesh_cli("validate", "--json", env=mesh_env(project, tmp_path / "home"), cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    problems = [p for p in json.loads(proc.stdout)["problems"] if p["rule"] == "asset-key-name"]
    assert len(problems) == 1, proc.stdout
    assert problems[0]["file"] == "dbt_projects/patient_360/models/marts/_sources.yml"
    assert "raw visits" in sources.read_text().splitlines()[problems[0]["line"] - 1]


def test_read_descriptor_of_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    loaded = read_descriptor(tmp_path / "nowhere" / "domain.yaml", "domains/nowhere/domain.yaml")
    assert loaded.descriptor is None and loaded.problems[0].rule == "readable"
