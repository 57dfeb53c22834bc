"""What the command line shows a newcomer: tables that fit 100 columns off a terminal (or the terminal's
width) without cutting an identifier, one line per product, masked values that read as masked and
NULL as NULL, listings that say when they are cut, plain `--help`, and `--json` as it was."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesh_platform.cli.app import app
from mesh_platform.cli.tables import shown_of
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.scaffold.testing import DomainWorkbench
from tests.conftest import copy_project, mesh_env, run_mesh_cli

PIPED = 100
PRODUCT_REFS = re.compile(r"\b[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\b")


def lines_fit(text: str, width: int) -> None:
    too_wide = [line for line in text.splitlines() if len(line.rstrip()) > width]
    assert not too_wide, f"{len(too_wide)} line(s) wider than {width}: {too_wide[0]!r}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose patients descriptor masks phone to NULL and redacts the birth date (a date,
    so nothing of it is left), beside the policies that keep a masked value."""
    root = copy_project(tmp_path_factory.mktemp("cli_tables") / "project")
    descriptor = root / "domains/patients/domain.yaml"
    text = descriptor.read_text()
    text = text.replace(
        "classification: pii, mask: redact}\n      - {name: date_of_birth",
        "classification: pii, mask: 'null'}\n      - {name: date_of_birth",
    )
    text = text.replace("classification: pii, mask: year}", "classification: pii, mask: redact}")
    descriptor.write_text(text)
    mesh = Mesh.load(MeshProject.discover(root))
    columns = {c.name: c.mask_policy for c in mesh.descriptors["patients"].product("patient_accounts").columns}
    assert (columns["phone"], columns["date_of_birth"], columns["email"]) == ("null", "redact", "token")
    return root


@pytest.fixture(scope="module")
def home(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """patients.patient_accounts and pharmacy.sites published; pharmacy's quarantine holds two records."""
    work = tmp_path_factory.mktemp("cli_tables_home")
    wb = DomainWorkbench(project, "pharmacy", work)
    wb.publish(
        "patients.patient_accounts",
        [
            {"patient_id": "P1", "first_name": "Ada", "email": "ada@example.com", "phone": "555-0101",
             "date_of_birth": "1990-05-17", "zip": "02134", "state": None},
            {"patient_id": "P2", "first_name": None, "email": None, "phone": None, "date_of_birth": None},
            {"patient_id": "P3", "first_name": "Alan", "email": "alan@example.com"},
        ],
    )  # fmt: skip
    wb.source("sites.csv", "site_id,site_name,zip,state,daily_capacity,opened_on\nS1,Main,02134,MA,x,2021-01-01\n"
              "S2,Harbor,98101,WA,80,2021-02-01\nS2,Again,98101,WA,80,2021-02-01\n")  # fmt: skip
    wb.source("vaccine_lots.csv", "lot_id,vaccine_code,manufacturer,site_id,doses_received,received_on,expires_on\n")
    wb.build()
    return wb.home.path


def cli(project: Path, home: Path, *args: str, columns: int | None = None) -> tuple[str, str]:
    env = mesh_env(project, home)
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = str(columns)
    proc = run_mesh_cli(*args, env=env, cwd=project, check=True)
    return proc.stdout, proc.stderr


def test_products_fit_100_columns_off_a_terminal_one_line_each(project: Path, home: Path) -> None:
    table, _ = cli(project, home, "products")
    lines_fit(table, PIPED)
    mesh = Mesh.load(MeshProject.discover(project))
    refs = [f"{d.domain}.{p.name}" for d, p in mesh.products()]
    rows = [line for line in table.splitlines() if PRODUCT_REFS.match(line.strip())]
    assert [PRODUCT_REFS.match(line.strip()).group(0) for line in rows] == refs  # each whole, one line each
    assert len(table.splitlines()) <= len(refs) + 5
    assert "team:patient-services" in table and "never run" in table
    assert "not shown at this width: consumers, value" in table  # says what it left out, and where it is


def test_a_wide_terminal_shows_every_column_and_a_narrow_one_never_cuts_a_name(project: Path, home: Path) -> None:
    wide, _ = cli(project, home, "products", columns=220)
    lines_fit(wide, 220)
    assert "consumers" in wide and "Who the pharmacy serves" in wide and "not shown" not in wide
    narrow, _ = cli(project, home, "products", columns=50)
    lines_fit(narrow, 50)
    assert "site_operations.site_daily_capacity" in narrow and "…" not in narrow.split("value")[0]


def test_products_json_is_unchanged_by_the_layout(project: Path, home: Path) -> None:
    entries = json.loads(cli(project, home, "products", "--json")[0])
    assert {"domain", "name", "owner", "value", "columns", "consumers", "status", "freshness"} <= set(entries[0])
    assert entries[0]["value"].startswith("Who the pharmacy serves")  # whole, not cut to the width


def test_read_shows_masked_values_as_masked_and_null_as_null(project: Path, home: Path) -> None:
    text, _ = cli(project, home, "read", "patients.patient_accounts", "--as", "patient_360")
    lines_fit(text, PIPED)
    blocks = text.split("row ")[1:]
    first, second = blocks[0], blocks[1]

    def field(block: str, name: str) -> str:
        return re.search(rf"^{name}\s+(.*?)\s*$", block, re.M).group(1)

    assert field(first, "first_name") == "[redacted]" and field(first, "email").startswith("tok_")
    assert field(first, "phone") == "[masked]" and field(first, "date_of_birth") == "[masked]"  # nothing left of them
    assert field(first, "zip") == "021XX" and field(first, "state") == "NULL"  # missing reads NULL, not blank
    assert field(second, "first_name") == "NULL" and field(second, "email") == "NULL"  # nulls stay null
    assert field(second, "phone") == "[masked]"
    assert "3 rows" in text
    rows = json.loads(cli(project, home, "read", "patients.patient_accounts", "--as", "patient_360", "--json")[0])
    assert rows[0]["phone"] is None and rows[0]["date_of_birth"] is None and rows[1]["email"] is None


def test_read_says_how_many_rows_it_left_out(project: Path, home: Path) -> None:
    text, _ = cli(project, home, "read", "patients.patient_accounts", "--as", "patient_360", "--limit", "2")
    assert "showing 2 of 3 rows" in text and text.count("row ") == 2
    table, _ = cli(project, home, "read", "patients.patient_accounts", "--as", "patient_360", columns=250)
    lines_fit(table, 250)
    assert "row 1 of" not in table and re.search(r"^patient_id\s+first_name", table, re.M)  # one table, wide enough


def test_quarantine_and_audit_say_when_they_are_cut(project: Path, home: Path) -> None:
    text, _ = cli(project, home, "quarantine", "--limit", "1")
    lines_fit(text, PIPED)
    assert "showing 1 of 2 records" in text and "unparseable_value" in text and "sites.csv:2" in text
    assert "showing" not in cli(project, home, "quarantine", "--limit", "0")[0]
    for _ in range(2):  # governed reads, each audited
        cli(project, home, "read", "patients.patient_accounts", "--as", "patient_360", "--json")
    audit, _ = cli(project, home, "audit", "--limit", "1")
    lines_fit(audit, PIPED)
    decisions = len(json.loads(cli(project, home, "audit", "--json")[0]))
    assert decisions >= 2 and f"showing 1 of {decisions} decisions" in audit


def test_counts_of_one_are_singular(project: Path, tmp_path: Path) -> None:
    wb = DomainWorkbench(project, "site_operations", tmp_path)
    wb.publish("pharmacy.sites", [{"site_id": "S1", "site_name": "Main", "daily_capacity": 40}])
    home = wb.home.path
    described, _ = cli(project, home, "products", "pharmacy.sites")
    assert re.search(r"version \S+, 1 row\b", described) and "1 rows" not in described
    read, _ = cli(project, home, "read", "pharmacy.sites", "--as", "site_operations")
    assert re.search(r"^1 row$", read, re.M) and "1 rows" not in read
    assert shown_of(1, 1, "record", "").plain == "1 record" and shown_of(2, 2, "record", "").plain == "2 records"
    assert shown_of(0, 1, "row", "how").plain == "showing 0 of 1 row (how)"


@pytest.mark.parametrize("verb", [None, *sorted(c.name for c in app.registered_commands)])
def test_help_names_value_types_but_no_bool_beside_flags(verb: str | None) -> None:
    result = CliRunner().invoke(app, [verb, "--help"] if verb else ["--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "Usage: " in result.output
    if verb in ("products", "read", "audit"):
        assert re.search(r"^\s+--json\s", result.output, re.M), result.output


def test_control_characters_from_source_data_are_shown_escaped_never_sent_to_the_terminal() -> None:
    """A source value can carry terminal escapes (recolour, retitle, move the cursor) or bidirectional
    overrides: `mesh read` and `mesh quarantine` show them as escapes."""
    from mesh_platform.cli.common import plain

    hostile = "A\x1b[31mRED\x1b]0;pwned\x07\u202eB\x9bC\r"
    shown = plain(hostile).plain
    assert shown == "A\\x1b[31mRED\\x1b]0;pwned\\x07\\u202eB\\x9bC\\r"
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert plain("tab\there\nnext line").plain == "tab\there\nnext line"  # layout characters stay
