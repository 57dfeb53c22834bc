"""Every `mesh` verb with hostile arguments: one line on stderr, exit status 2, never a traceback,
and the user's text shown as typed (never read as Rich markup)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer

from mesh_platform.cli.app import app
from tests.conftest import copy_project, mesh_env, run_mesh_cli

pytestmark = pytest.mark.slow

TWENTY_DIGITS = "9" * 20

# (arguments, extra environment, text the one stderr line must contain)
HOSTILE: list[tuple[list[str], dict[str, str], str]] = [
    (["nosuchverb"], {}, "No such command"),
    (["--bogus"], {}, "No such option"),
    (["seed", "--scale", "nan"], {}, "--scale"),
    (["seed", "--scale", "inf"], {}, "--scale"),
    (["seed", "--scale", "-inf"], {}, "--scale"),
    (["seed", "--scale", "1e-9"], {}, "--scale"),
    (["seed", "--scale", "-1"], {}, "--scale"),
    (["seed", "--scale", "1e308"], {}, "--scale"),
    (["seed", "--scale", "[/]"], {}, "--scale"),
    (["seed", "--seed", "-1"], {}, "--seed"),
    (["run", "--domain", "[/]"], {}, "'[/]'"),
    (["run", "--domain", "a\nb"], {}, "unknown domain"),
    (["run", "--jobs", "0"], {}, "--jobs"),
    (["run", "--jobs", TWENTY_DIGITS + "x"], {}, "--jobs"),
    (["run"], {"MESH_RUN_JOBS": "[bold]x"}, "MESH_RUN_JOBS"),
    (["validate", "extra"], {}, "unexpected extra argument"),
    (["products", "[red]x"], {}, "'[red]x'"),
    (["products", "pharmacy.nope"], {}, "unknown product 'pharmacy.nope'"),
    (["read", "pharmacy.sites", "--as", "site_operations", "--limit", "-1"], {}, "--limit"),
    (["read", "pharmacy.sites", "--as", "site_operations", "--limit", TWENTY_DIGITS], {}, "--limit"),
    (["read", "pharmacy.sites", "--as", "site_operations", "--limit", "nan"], {}, "--limit"),
    (["read", "pharmacy.sites", "--as", "[/]"], {}, "'[/]'"),
    (["read", "pharmacy.sites", "--as", "[bold]x"], {}, "'[bold]x'"),
    (["read", "[/]", "--as", "site_operations"], {}, "'[/]'"),
    (["read", "pharmacy.sites"], {}, "--as"),
    (["read", "pharmacy.sites", "--as", "site_operations", "--at", "[/]"], {}, "--at: '[/]' is neither"),
    (["read", "pharmacy.sites", "--as", "site_operations", "--at", "2026-02-30"], {}, "--at: '2026-02-30'"),
    (["read", "pharmacy.sites", "--as", "site_operations", "--at", "2020-01-01"], {}, "not been published"),
    (["versions", "[/]"], {}, "'[/]'"),
    (["versions", "pharmacy.nope"], {}, "unknown product 'pharmacy.nope'"),
    (["versions"], {}, "DOMAIN.PRODUCT"),
    (["lineage", "--format", "[/]"], {}, "'[/]'"),
    (["check-change", "--base", "[/]"], {}, "not a git checkout"),  # a copy without .git
    (["quarantine", "[/]"], {}, "'[/]'"),
    (["quarantine", "--as", "[bold]x"], {}, "'[bold]x'"),
    (["quarantine", "--limit", "-1"], {}, "--limit"),
    (["audit", "--limit", "-1"], {}, "--limit"),
    (["audit", "--consumer", "[/]"], {}, "'[/]'"),
    (["audit", "--product", "[bold]x.y"], {}, "'[bold]x.y'"),
    (["prepare", "--bogus"], {}, "No such option"),
    (["new-domain", "[/]", "--owner", "team:x"], {}, "'[/]'"),
    (["new-domain", "order", "--owner", "team:x"], {}, "reserved SQL word"),
    (["new-domain", "fresh", "--owner", "[bold]x"], {}, "'[bold]x'"),
    (["new-domain", "fresh", "--owner", "team:x", "--kind", "[/]"], {}, "--kind"),
    (["new-domain", "fresh", "--owner", "team:x", "--consumes", "[/].x"], {}, "'[/].x'"),
    (["new-product", "[/]", "fresh"], {}, "'[/]'"),
    (["new-product", "pharmacy", "group"], {}, "reserved SQL word"),
    (["new-product", "pharmacy", "fresh", "--kind", "[/]"], {}, "--kind"),
    (["export-contract", "[/]"], {}, "'[/]'"),
    (["import-contract", "[/]"], {}, "'[/]'"),
    (["emit", "--interval", "nan"], {}, "--interval"),
    (["emit", "--interval", "inf"], {}, "--interval"),
    (["emit", "--interval", "-1"], {}, "--interval"),
    (["emit", "--malformed-rate", "nan"], {}, "--malformed-rate"),
    (["emit", "--malformed-rate", "2"], {}, "--malformed-rate"),
    (["emit", "--bookings", TWENTY_DIGITS], {}, "--bookings"),
    (["emit", "--batches", "0"], {}, "--batches"),
]


@pytest.fixture(scope="module")
def mesh_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("cli")
    root = copy_project(base / "project")
    return root, mesh_env(root, base / "home")


def test_every_verb_refuses_hostile_arguments_in_one_line(mesh_project: tuple[Path, dict[str, str]]) -> None:
    root, env = mesh_project
    assert set(typer.main.get_command(app).commands) <= {args[0] for args, _, _ in HOSTILE}  # every verb

    def attempt(case: tuple[list[str], dict[str, str], str]) -> tuple[list[str], str, object]:
        args, extra, expected = case
        return args, expected, run_mesh_cli(*args, env={**env, **extra}, cwd=root)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(attempt, HOSTILE))
    for args, expected, proc in results:
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
        assert expected in lines[0], (args, lines[0])
        assert "Traceback" not in proc.stderr and not proc.stdout, (args, proc.stdout)
    assert not (root / "domains" / "fresh").exists() and not Path(env["MESH_HOME"], "sources").exists()


def test_markup_in_a_name_is_shown_as_typed(mesh_project: tuple[Path, dict[str, str]]) -> None:
    root, env = mesh_project
    proc = run_mesh_cli("read", "pharmacy.sites", "--as", "[bold]x", env=env, cwd=root)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --as: unknown domain '[bold]x'; domains: immunizations, patient_360, patients, pharmacy, "
        "scheduling, site_operations"
    )


def test_a_mesh_home_that_cannot_be_one_is_refused_in_one_line(
    mesh_project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """MESH_HOME on a file, under a file, or with glob characters (Dagster would read no dagster.yaml
    there, and `mesh run` would wait for a daemon): one line naming it, for every verb that uses it."""
    root, env = mesh_project
    file = tmp_path / "a-file"
    file.write_text("")
    homes = [(file, "is a file, not a folder"), (file / "sub", "is a file, not a folder"), (tmp_path / "h[1]", "[ ]")]
    for home, expected in homes:
        for verb in (["products"], ["seed", "--scale", "0.01"], ["run"], ["audit", "--verify"]):
            proc = run_mesh_cli(*verb, env={**env, "MESH_HOME": str(home)}, cwd=root)
            lines = proc.stderr.splitlines()
            assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], (home, verb, proc.stderr)
            assert "Traceback" not in proc.stderr, (home, verb)
    assert not (tmp_path / "h[1]").exists()
