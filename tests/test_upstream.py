"""Private library APIs are fenced in `mesh_platform/upstream/`, and what they are relied on for holds.

- No module of `mesh_platform/` outside `upstream/` imports a `_private` module or name of Dagster,
  dagster-dbt, dbt or Great Expectations (read from the source's syntax tree, so a new import fails
  here before review).
- The origins `mesh run` gives its runs are exactly those Dagster's own workspace loading gives a
  run launched from the UI (a Dagster upgrade that changes them fails here).
- The dev instance's launcher runs a linked run in a run worker forked from the warm server, which
  never imports the mesh's code: an edit of a domain's code is what the next run executes.
- Great Expectations still lacks what `upstream/gx_duckdb` and `checks/gx_sql_engine` supply (regex SQL for
  DuckDB, results kept when a connection goes back to its pool): each alarm says what to delete when it
  is fixed upstream.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from mesh_platform.checks.gx_sql_engine import duckdb_batch
from mesh_platform.upstream.gx_duckdb import HELPER, REGEX_MODULES, is_duckdb
from tests.conftest import ROOT, copy_project, mesh_env, run_mesh_cli

PACKAGE = ROOT / "mesh_platform"
FENCE = PACKAGE / "upstream"
GUARDED = ("dagster", "dbt", "great_expectations")  # with dagster_dbt, dagster_* and dbt.* alike


def _guarded(module: str) -> bool:
    top = module.split(".")[0]
    return top.startswith(GUARDED) or top in GUARDED


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def private_imports(path: Path) -> list[str]:
    """`file:line: what` for each import of a guarded library's private module or name in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if _guarded(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and _guarded(node.module):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and _guarded(node.args[0].value)
        ):
            names = [node.args[0].value]
        where = path.relative_to(ROOT) if ROOT in path.parents else path
        found += [f"{where}:{node.lineno}: {name}" for name in names if _private(name)]
    return found


def test_private_library_imports_only_in_the_upstream_package() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if FENCE not in p.parents]
    found = [hit for path in outside for hit in private_imports(path)]
    assert found == [], "private imports outside mesh_platform/upstream/ (fence them there):\n" + "\n".join(found)


def test_the_fence_check_finds_each_kind_of_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import dagster._core.launcher\n"
        "from dagster import _check\n"
        "from dagster_dbt.asset_utils import _private_helper\n"
        "from dbt.contracts import graph\n"  # public: not reported
        "import importlib\n"
        "importlib.import_module('great_expectations._version')\n"
        "from dagster import __version__, asset\n"  # public: not reported
    )
    assert [hit.split(": ", 1)[1] for hit in private_imports(sample)] == [
        "dagster._core.launcher",
        "dagster._check",
        "dagster_dbt.asset_utils._private_helper",
        "great_expectations._version",
    ]


def test_every_fenced_module_is_listed_in_the_upstream_docstring() -> None:
    listed = ast.get_docstring(ast.parse((FENCE / "__init__.py").read_text())) or ""
    for module in FENCE.glob("*.py"):
        if module.name != "__init__.py":
            assert f"`{module.stem}`" in listed, f"{module.name} is not in upstream/__init__.py's list"


@pytest.mark.slow
def test_linked_origins_are_those_of_dagsters_workspace_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code server of workspace.yaml (as `dagster dev` starts one) reports the origins of each job;
    the run `mesh run` creates carries the same, for a Python and a dbt domain."""
    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    from mesh_platform.project.dagster_instance import prepare_instance
    from mesh_platform.upstream.dagster_runs import create_linked_run, load_linked_job

    root = copy_project(tmp_path / "project")
    home = tmp_path / "home"
    for key, value in mesh_env(root, home).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(root)
    prepare_instance(home / "dagster", {})
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    # the same entries as workspace.yaml, two of them: one code server each
    lines = (root / "workspace.yaml").read_text().splitlines()
    two = root / "workspace_two.yaml"
    two.write_text("\n".join(["load_from:", *[line for line in lines if "/pharmacy/" in line or "/patients/" in line]]))
    with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(two)])) as context:
        request = context.create_request_context()
        for domain in ("pharmacy", "patients"):
            remote = request.get_code_location(domain).get_repository("__repository__").get_full_job(domain)
            linked = load_linked_job(root / "workspace.yaml", domain, domain)
            assert linked.remote_origin == remote.get_remote_origin()
            assert linked.code_origin == remote.get_python_origin()
            run = create_linked_run(instance, linked, str(uuid.uuid4()), {"mesh/launched_by": "mesh run"})
            # listed with its job: the UI's job page filters runs by job name and repository label
            label = {".dagster/repository": f"__repository__@{domain}"}
            listed = instance.get_runs(dg.RunsFilter(job_name=domain, tags=label))
            assert [r.run_id for r in listed] == [run.run_id]
            assert run.tags["mesh/domain"] == domain and run.job_snapshot_id == remote.identifying_job_snapshot_id


def test_the_warm_server_imports_no_mesh_code() -> None:
    """What the server imports before forking workers: the libraries, never `mesh_platform`; and it
    is left with one thread (a fork copies only the forking thread: a lock another thread held
    would stay locked in every worker)."""
    script = PACKAGE / "orchestration" / "run_worker_server.py"
    code = (
        "import runpy, sys, threading; ns = runpy.run_path(sys.argv[1]); ns['warm_up']();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mesh_platform', 'mesh_domains', 'domains')));"
        "print(all(m in sys.modules for m in ('dagster', 'dagster_dbt', 'great_expectations', 'duckdb')));"
        "print(threading.active_count())"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code, str(script)], capture_output=True, text=True, cwd="/")
    assert out.stdout.split() == ["[]", "True", "1"], out.stdout + out.stderr[-2000:]


@pytest.mark.slow
def test_the_launcher_runs_a_linked_run_in_a_warm_worker(tmp_path: Path) -> None:
    """Two `mesh run`s of a domain: each run is executed by a worker forked from the warm server
    (started by the first); the second executes the domain's code as edited after the first."""
    import dagster as dg

    root = copy_project(tmp_path / "project")
    home = tmp_path / "home"
    env = mesh_env(root, home)
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root, check=True)
    code = root / "domains" / "pharmacy" / "assets.py"
    code.write_text(code.read_text() + "\nprint('edited after the first run')\n")
    run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root, check=True)

    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    first, second = sorted(instance.get_runs(), key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp)
    for run in (first, second):
        assert run.status == dg.DagsterRunStatus.SUCCESS
        events = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
        messages = [r.event_log_entry.dagster_event.message or "" for r in events]
        assert any("forked from the warm run worker server" in m for m in messages), messages
    assert "edited after the first run" not in Path(first.tags["mesh/log"]).read_text()
    assert "edited after the first run" in Path(second.tags["mesh/log"]).read_text()
    servers = list((home / "dagster" / "run_workers").glob("*.pid"))
    assert len(servers) == 1, "one warm server per instance and interpreter"
    server = int(servers[0].read_text())
    os.kill(server, 15)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def _gx_package() -> Path:
    import great_expectations

    return Path(great_expectations.__file__).parent


def test_gx_still_has_no_regex_operator_for_duckdb() -> None:
    import sqlalchemy as sa
    from duckdb_engine import Dialect
    from great_expectations.expectations.metrics import util

    expression = util.get_dialect_regex_expression(sa.column("email"), "@", Dialect())
    assert expression is None, (
        "GX now builds regex SQL for DuckDB itself: delete mesh_platform/upstream/gx_duckdb.py and its entry in "
        "mesh_platform/upstream/__init__.py"
    )


def test_the_regex_helper_is_used_by_exactly_the_modules_given_its_replacement() -> None:
    """A GX module that starts building regex SQL with the helper would not get DuckDB's operator."""
    users = {
        ".".join(path.relative_to(_gx_package().parent).with_suffix("").parts)
        for path in _gx_package().rglob("*.py")
        if HELPER in path.read_text(encoding="utf-8") and path.name != "util.py"
    }
    assert users == set(REGEX_MODULES), f"GX modules that build regex SQL changed: {sorted(users ^ set(REGEX_MODULES))}"
    for name in REGEX_MODULES:
        assert hasattr(importlib.import_module(name), HELPER), f"{name} no longer imports {HELPER} by name"


def test_the_regex_helper_keeps_the_signature_it_is_replaced_with() -> None:
    from great_expectations.expectations.metrics import util

    parameters = list(inspect.signature(util.get_dialect_regex_expression).parameters)
    assert parameters == ["column", "regex", "dialect", "positive"], parameters


def test_regex_expectations_run_in_duckdb_as_searches() -> None:
    import great_expectations as gx

    con = duckdb.connect()
    con.execute("create table t as select * from (values ('abc'), ('xbz'), ('aaa'), (null)) v(s)")
    batch = duckdb_batch(con, "t")
    results = {
        name: batch.validate(expectation, result_format="BASIC").result.get("unexpected_count")
        for name, expectation in {
            "match": gx.expectations.ExpectColumnValuesToMatchRegex(column="s", regex="b"),
            "not_match": gx.expectations.ExpectColumnValuesToNotMatchRegex(column="s", regex="^a"),
            "match_list": gx.expectations.ExpectColumnValuesToMatchRegexList(column="s", regex_list=["z$", "c$"]),
        }.items()
    }
    # a search, like GX's other engines: 'b' is found inside 'abc' and 'xbz' (not a full match)
    assert results == {"match": 1, "not_match": 2, "match_list": 1}
    assert is_duckdb(batch.data.execution_engine.engine.dialect)


def test_gx_alone_still_loses_duckdb_results_when_the_connection_goes_back_to_its_pool(tmp_path: Path) -> None:
    """GX issue #10738: without `AutocommitConnection` every metric comes back empty. When GX reads
    its rows before handing the connection back, this test fails: the plain `duckdb_engine`
    connection then works, and `checks/gx_duckdb.AutocommitConnection` can go."""
    script = textwrap.dedent(
        """
        import duckdb, great_expectations as gx
        from duckdb_engine import ConnectionWrapper
        con = duckdb.connect()
        con.execute("create table t as select range as id from range(10)")
        source = gx.get_context(mode="ephemeral").data_sources.add_sql(
            "w", connection_string="duckdb:///:memory:", kwargs={"creator": lambda: ConnectionWrapper(con.cursor())}
        )
        batch = source.add_table_asset("t", table_name="t").add_batch_definition_whole_table("w").get_batch()
        result = batch.validate(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, max_value=100))
        info = str(result.exception_info)
        print("PASSED" if result.success else "FAILED", "IndexError" if "IndexError" in info else info[:500])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("FAILED") and "IndexError" in proc.stdout, (
        "GX reads DuckDB results correctly on its own now (GX #10738 fixed): "
        "drop AutocommitConnection from mesh_platform/checks/gx_sql_engine.py\n" + proc.stdout
    )


@pytest.mark.parametrize("method", ["begin", "commit", "rollback"])
def test_duckdb_engine_still_sends_transactions_through_the_connection_it_wraps(method: str) -> None:
    """`AutocommitConnection` works by overriding these: duckdb_engine must still reach the DuckDB
    connection through them (and not, say, by executing `ROLLBACK` on a cursor)."""
    from duckdb_engine import ConnectionWrapper, Dialect

    calls: list[str] = []

    class Spy(ConnectionWrapper):
        def begin(self) -> None:
            calls.append("begin")

        def commit(self) -> None:
            calls.append("commit")

        def rollback(self) -> None:
            calls.append("rollback")

    dialect, spy = Dialect(), Spy(duckdb.connect())
    {"begin": dialect.do_begin, "commit": dialect.do_commit, "rollback": dialect.do_rollback}[method](spy)
    assert calls == [method]
