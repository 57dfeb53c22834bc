"""A broken domain is reported and isolated; different domains run at the same time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mesh_platform.defs.domain_definitions import domain_definitions
from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.project.workspace_file import entry_for
from tests.conftest import MESH, ROOT, copy_project, mesh_env, run_mesh_cli, run_spans

pytestmark = pytest.mark.slow


def _break_site_operations(root: Path) -> None:
    code = root / "domains" / "site_operations" / "assets.py"
    code.write_text(code.read_text() + "\ndef broken(:\n")


def test_broken_domain_code_is_isolated(project: Path) -> None:
    _break_site_operations(project)
    mesh = Mesh.load(MeshProject.discover(project))
    with pytest.raises(MeshDefinitionError) as err:
        domain_definitions("site_operations", mesh)
    assert "domains/site_operations/assets.py" in str(err.value)
    assert "domain-code-imports" in str(err.value)
    # every other domain still builds its code location
    for domain in ("patients", "scheduling", "pharmacy", "immunizations", "patient_360"):
        assert domain_definitions(domain, mesh).resolve_job_def(domain) is not None


def test_validate_reports_broken_code_without_traceback(project: Path, tmp_path: Path) -> None:
    _break_site_operations(project)
    proc = run_mesh_cli("validate", env=mesh_env(project, tmp_path / "home"), cwd=project)
    assert proc.returncode == 1
    assert "domains/site_operations/assets.py" in proc.stderr and "domain-code-imports" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_broken_domain_does_not_stop_others_running(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    _break_site_operations(root)
    env = mesh_env(root, tmp_path / "home")
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    proc = run_mesh_cli("run", "--domain", "pharmacy", "--domain", "site_operations", env=env, cwd=root)
    assert proc.returncode == 1
    assert "site_operations: invalid" in proc.stderr
    assert "domain-code-imports" in proc.stderr
    products = run_mesh_cli("products", "--json", env=env, cwd=root, check=True).stdout
    assert '"ref": "pharmacy.sites"' in products and '"last_run": "published"' in products


def test_two_domains_run_concurrently(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    procs = [
        subprocess.Popen(
            [MESH, "run", "--domain", d], env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for d in ("pharmacy", "scheduling")
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stdout + stderr
        assert "lock" not in stderr.lower()


def test_one_job_runs_domains_one_after_another(tmp_path: Path) -> None:
    from dagster import DagsterInstance

    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    refused = run_mesh_cli("run", "--jobs", "0", env=env, cwd=root)
    assert refused.returncode == 2 and "--jobs" in refused.stderr
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    run_mesh_cli("run", "--jobs", "1", "--domain", "pharmacy", "--domain", "scheduling", env=env, cwd=root, check=True)
    (_, first_end), (second_start, _) = sorted(run_spans(tmp_path / "home").values())
    assert first_end <= second_start
    # each in a run worker of its own, whose memory goes back to the system when the domain is done
    runs = DagsterInstance.from_config(str(tmp_path / "home" / "dagster")).get_runs()
    assert len({run.tags["mesh/pid"] for run in runs}) == 2


def _started(proc: subprocess.Popen, count: int) -> list[str]:
    """Read `mesh run`'s progress until `count` domains' runs have started a step; their run ids."""
    runs: list[str] = []
    stepping: set[str] = set()
    while len(stepping) < count:
        line = proc.stderr.readline()
        assert line, "mesh run ended before its domains started"
        if ": run " in line:
            runs.append(line.split(": run ")[1].strip())
        elif "▶" in line:
            stepping.add(line.split("▶")[1].strip().split("__")[0])
    return runs


def _worker(instance: Any, run_id: str) -> int:
    deadline = time.monotonic() + 60
    while not (pid := instance.get_run_by_id(run_id).tags.get("mesh/pid")):
        assert time.monotonic() < deadline, "no worker recorded"
        time.sleep(0.2)
    return int(pid)


def _mesh_run(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [MESH, "run", *args],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: started as a background job without job control (as CI may start the
        # suite), the test inherits SIGINT ignored, and so would `mesh run`
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


PHARMACY_CODE = Path("domains") / "pharmacy" / "assets.py"


def _slow_pharmacy(root: Path, seconds: int, then_fail: bool) -> None:
    """pharmacy's `sites` waits `seconds` in its step (and then raises): a producer that runs long.
    (It uses `ctx.con` first: column lineage calls the function to learn its SQL, and stops there.)"""
    code = root / PHARMACY_CODE
    body = f"    ctx.con.execute('select 1')\n    time.sleep({seconds})\n" + (
        "    raise RuntimeError('the site register is unreachable')\n" if then_fail else ""
    )
    shipped = (ROOT / PHARMACY_CODE).read_text()
    code.write_text("import time\n" + shipped.replace("-> str:\n", "-> str:\n" + body, 1))


def test_ctrl_c_stops_every_domain_and_cancels_their_runs(tmp_path: Path) -> None:
    from dagster import DagsterInstance, DagsterRunStatus

    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    _slow_pharmacy(root, 60, then_fail=False)  # so that a run is in flight when Ctrl-C comes
    proc = _mesh_run(root, env)
    run_ids = _started(proc, 2)  # two domains running at once, each in its run worker
    instance = DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    workers = [_worker(instance, run_id) for run_id in run_ids]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    active = {DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}
    runs = instance.get_runs()
    assert not [(run.job_name, run.status) for run in runs if run.status in active]
    # every run this `mesh run` made that did not succeed was cancelled, pharmacy's long one among them
    interrupted = {r.job_name: r.status for r in runs if r.status != DagsterRunStatus.SUCCESS}
    assert interrupted.get("pharmacy") == DagsterRunStatus.CANCELED, interrupted
    assert set(interrupted.values()) == {DagsterRunStatus.CANCELED}, interrupted


def test_ctrl_c_between_creating_a_run_and_submitting_it_leaves_no_run_behind(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C can come at any moment of `mesh run`; here just after patients' run was created and
    before it was submitted (as it is shown). The run never started, so it is deleted, as a run
    created ahead is."""
    from dagster import DagsterInstance

    from mesh_platform.orchestration.domain_runs import DomainRuns, job_loader, open_instance, submission_order

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))  # `open_instance` sets it
    mesh = Mesh.load(MeshProject.discover(project))

    def ctrl_c_once_shown(line: str) -> None:
        if ": run " in line:
            raise KeyboardInterrupt

    order = submission_order(mesh, ["patients"])
    loader = job_loader(mesh, order)
    with pytest.raises(KeyboardInterrupt), open_instance(mesh) as instance:
        DomainRuns(mesh, order, instance, ctrl_c_once_shown, 1, loader).run()
    loader.stop(30)
    assert DagsterInstance.from_config(str(tmp_path / "home" / "dagster")).get_runs() == []


class _SignalsWhenCollected:
    """Sends this process SIGINT from its finalizer, so that Python runs the SIGINT handler there:
    what happens when Ctrl-C comes while SQLAlchemy's finalizers run, as they often do in `mesh run`."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(10_000))  # the handler runs here, inside the finalizer


def test_ctrl_c_that_lands_in_a_finalizer_still_stops_mesh_run(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt raised inside a finalizer is printed as "Exception ignored" and lost, so
    `mesh run` went on to the end. Ctrl-C is now recorded and acted on between polls: the run is
    stopped and nothing is left running or waiting."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    from mesh_platform.orchestration.ctrl_c import deferred_ctrl_c
    from mesh_platform.orchestration.domain_runs import DomainRuns, job_loader, open_instance, submission_order

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))  # `open_instance` sets it
    mesh = Mesh.load(MeshProject.discover(project))

    def ctrl_c_in_a_finalizer(line: str) -> None:
        if ": run " in line:
            _SignalsWhenCollected()  # collected at once

    order = submission_order(mesh, ["patients"])
    loader = job_loader(mesh, order)
    # as in a terminal: started in the background without job control (as CI may start the suite),
    # the test process has SIGINT ignored, and `mesh run` then leaves it so
    terminal = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), deferred_ctrl_c() as ctrl_c, open_instance(mesh) as instance:
            DomainRuns(mesh, order, instance, ctrl_c_in_a_finalizer, 1, loader, ctrl_c).run()
    finally:
        signal.signal(signal.SIGINT, terminal)
    loader.stop(30)
    active = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    assert not DagsterInstance.from_config(str(tmp_path / "home" / "dagster")).get_runs(RunsFilter(statuses=active))


def test_a_run_whose_worker_dies_fails_and_frees_its_domain(tmp_path: Path) -> None:
    """Killed (out of memory, kill -9) while `mesh run` waits: the domain fails at once with why.
    Killed together with its `mesh run`: the next `mesh run` marks the run failed. Either way the
    domain's pool slot is free again and its next run succeeds."""
    from dagster import DagsterInstance, DagsterRunStatus

    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    instance = DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))

    proc = _mesh_run(root, env, "--domain", "scheduling")
    (killed,) = _started(proc, 1)
    os.kill(_worker(instance, killed), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "scheduling: failure" in stderr and "is gone" in stderr, stderr
    assert instance.get_run_by_id(killed).status == DagsterRunStatus.FAILURE

    proc = _mesh_run(root, env, "--domain", "scheduling")
    (orphan,) = _started(proc, 1)
    worker = _worker(instance, orphan)
    proc.kill()
    os.kill(worker, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert instance.get_run_by_id(orphan).status == DagsterRunStatus.STARTED  # nobody left to say otherwise
    run_mesh_cli("run", "--domain", "scheduling", env=env, cwd=root, check=True)
    assert instance.get_run_by_id(orphan).status == DagsterRunStatus.FAILURE


def test_a_broken_descriptor_breaks_only_its_own_domain(tmp_path: Path) -> None:
    """A non-UTF-8 byte in pharmacy's descriptor and an alias bomb in site_operations': every other
    verb and domain works, and `mesh validate` lists both, each at its line."""
    from tests.test_descriptor_safety import ALIAS_BOMB

    root = copy_project(tmp_path / "project")
    pharmacy = root / "domains" / "pharmacy" / "domain.yaml"
    pharmacy.write_bytes(pharmacy.read_bytes() + b'x: "caf\xe9"\n')
    site_ops = root / "domains" / "site_operations" / "domain.yaml"
    bomb = "      - type: expect_column_values_to_be_in_set\n        kwargs:\n          column: site_id" + ALIAS_BOMB
    site_ops.write_text(site_ops.read_text().replace("    expectations:\n", "    expectations:\n" + bomb, 1))
    env = mesh_env(root, tmp_path / "home")

    validate = run_mesh_cli("validate", env=env, cwd=root)
    assert validate.returncode == 1 and "Traceback" not in validate.stderr
    assert "domains/pharmacy/domain.yaml:" in validate.stderr and "[utf-8]" in validate.stderr
    assert "domains/site_operations/domain.yaml:" in validate.stderr and "[alias-expansion]" in validate.stderr

    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    run_mesh_cli("run", "--domain", "scheduling", env=env, cwd=root, check=True)
    products = run_mesh_cli("products", "--json", env=env, cwd=root, check=True)
    refs = {p["ref"]: p["status"]["last_run"] for p in json.loads(products.stdout)}
    assert refs["scheduling.appointments"] == "published" and "pharmacy.sites" not in refs
    assert "warning: pharmacy is left out" in products.stderr and "Traceback" not in products.stderr
    lineage = run_mesh_cli("lineage", "--format", "json", env=env, cwd=root, check=True)
    assert "scheduling.appointments" in lineage.stdout

    broken = run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root)
    assert broken.returncode == 1 and "pharmacy: invalid" in broken.stderr and "[utf-8]" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_validate_names_a_domain_the_workspace_cannot_run(project: Path, tmp_path: Path) -> None:
    """A domain without its code location validated and then could not run (neither `mesh run` nor
    the UI): `mesh validate` names the entry to add, a location loading another domain's code, and
    one loading a file that is not there."""
    workspace = project / "workspace.yaml"
    lines = workspace.read_text().splitlines(keepends=True)
    kept = [line for line in lines if "location_name: pharmacy," not in line]
    kept = [line.replace("domains/scheduling/", "domains/patients/") for line in kept]
    kept.append(entry_for("gone"))
    workspace.write_text("".join(kept))
    proc = run_mesh_cli("validate", "--json", env=mesh_env(project, tmp_path / "home"), cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    found = {(p["field"], p["message"]) for p in json.loads(proc.stdout)["problems"] if p["file"] == "workspace.yaml"}
    assert found == {
        (
            "pharmacy",
            "domain 'pharmacy' has no code location, so neither `mesh run` nor the UI can run it; add under "
            "load_from: - python_file: {relative_path: domains/pharmacy/definitions.py, location_name: pharmacy, "
            "working_directory: .}",
        ),
        ("scheduling", "code location 'scheduling' loads domains/patients/definitions.py, not its domain's "
         "domains/scheduling/definitions.py"),
        ("gone", "code location 'gone' loads domains/gone/definitions.py, which is not there"),
    }  # fmt: skip
    workspace.write_text("load_from: [\n")
    proc = run_mesh_cli("validate", env=mesh_env(project, tmp_path / "home"), cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "workspace.yaml: [workspace-location] workspace.yaml is not valid YAML" in proc.stderr


def test_a_consumers_run_is_created_while_its_producer_runs_and_deleted_if_it_fails(tmp_path: Path) -> None:
    """`mesh run` creates immunizations' run while pharmacy's runs, and only submits it when pharmacy
    has succeeded; when pharmacy fails, the run created ahead is deleted: immunizations is skipped
    and has no run in the instance, as before."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    instance = DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    selection = ("--domain", "pharmacy", "--domain", "immunizations", "--jobs", "1")

    _slow_pharmacy(root, 8, then_fail=False)
    run_mesh_cli("run", *selection, env=env, cwd=root, check=True)
    producer = instance.get_run_records(RunsFilter(job_name="pharmacy"))[0]
    consumer = instance.get_run_records(RunsFilter(job_name="immunizations"))[0]
    assert consumer.dagster_run.status == DagsterRunStatus.SUCCESS
    assert consumer.create_timestamp.timestamp() < producer.end_time, "created after its producer ended"
    assert consumer.start_time >= producer.end_time, "started before its producer ended"

    _slow_pharmacy(root, 8, then_fail=True)
    proc = run_mesh_cli("run", *selection, env=env, cwd=root)
    assert proc.returncode == 1 and "immunizations: skipped, upstream pharmacy failed" in proc.stderr, proc.stderr
    assert [r.status for r in instance.get_runs(RunsFilter(job_name="immunizations"))] == [DagsterRunStatus.SUCCESS]
    assert not instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.NOT_STARTED]))


def test_a_run_created_ahead_by_a_killed_mesh_run_is_deleted_by_the_next(tmp_path: Path) -> None:
    """`mesh run` killed (kill -9) while pharmacy runs leaves immunizations' run created and never
    submitted; the next `mesh run` deletes it (it never started) and runs the mesh."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    instance = DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    _slow_pharmacy(root, 60, then_fail=False)
    proc = _mesh_run(root, env, "--domain", "pharmacy", "--domain", "immunizations", "--jobs", "1")
    (producer,) = _started(proc, 1)
    deadline = time.monotonic() + 50
    while not instance.get_runs(RunsFilter(job_name="immunizations")):
        assert time.monotonic() < deadline and proc.poll() is None, "immunizations' run was not created ahead"
        time.sleep(0.2)
    (ahead,) = instance.get_runs(RunsFilter(job_name="immunizations"))
    assert ahead.status == DagsterRunStatus.NOT_STARTED
    worker = _worker(instance, producer)
    proc.kill()
    os.kill(worker, signal.SIGKILL)
    proc.communicate(timeout=60)

    (root / PHARMACY_CODE).write_text((ROOT / PHARMACY_CODE).read_text())
    run_mesh_cli("run", "--domain", "pharmacy", "--domain", "immunizations", env=env, cwd=root, check=True)
    assert instance.get_run_by_id(ahead.run_id) is None
    assert [r.status for r in instance.get_runs(RunsFilter(job_name="immunizations"))] == [DagsterRunStatus.SUCCESS]
