"""Every use of a library's private API left in the mesh, fenced: this package and nowhere else.

The mesh uses Dagster, dagster-dbt, dbt and Great Expectations through their public interfaces.
Where it cannot, the private use is here, one submodule per library, and this list names each
case: why (the upstream issue or missing API), what it gains (measured), and the test that fails
loudly if an upgrade changes the behaviour relied on. `tests/test_upstream.py` fails on any import
of a `_private` module or name of those libraries elsewhere in `mesh_platform/`.

`dagster_runs` (Dagster):

1. Runs of `mesh run` linked to their code location. Why: Dagster has no public call that creates
   a run linked to a job of a `workspace.yaml` code location without starting a code server
   process for it (`dagster job launch`, the webserver, the daemon each start one). The origins
   come from Dagster's own loaders (`dagster._core.workspace.load.location_origins_from_yaml_paths`,
   `dagster._grpc.server.LoadedRepositories`, `RemoteJobOrigin`), the run from
   `DagsterInstance.create_run_for_job` (not in Dagster's API docs). Gain: the run is listed with
   its job's runs in the UI and can be re-executed from it (before: "Manually launched", no job,
   "Re-execute all (*)" only), without a code server process per domain (what one costs:
   docs/performance.md). Tests:
   `tests/test_upstream.py::test_linked_origins_are_those_of_dagsters_workspace_loading` (the
   origins equal those a code server of workspace.yaml reports) and
   `tests/test_ui.py::test_a_mesh_run_run_is_listed_with_its_job_and_reexecutes_from_the_ui`.
2. `DagsterInstance.submit_run(run_id, workspace)` is passed no workspace: no coordinator or
   launcher the mesh configures reads it (the default and queued coordinators pass it to the
   launcher; the mesh's launcher and the DefaultRunLauncher behind the queue do not need it).
   Test: every `mesh run` test.
3. The run launcher (`orchestration/launcher.py`) is a `RunLauncher` (`dagster._core.launcher`,
   with `LaunchRunContext`, `CheckRunHealthResult`, `WorkerStatus`) configured in dagster.yaml
   (`dagster._serdes.ConfigurableClass`), Dagster's documented extension point for how runs start;
   it starts Dagster's run worker with `ExecuteRunArgs` (`dagster._grpc.types`), as Dagster's
   K8sRunLauncher and DockerRunLauncher do. Gain: every run (UI, schedule, sensor, automation,
   `mesh run`) in a run worker forked warm (figures in docs/performance.md). Tests:
   `tests/test_upstream.py::test_the_launcher_runs_a_linked_run_in_a_warm_worker`,
   `tests/test_launcher.py`.

`dagster_automation` (Dagster):

1. A consumer's automation tells a run it requested from any other run updating it
   (`orchestration/automation.py`). Why: `eager` forgets a publication seen in the same evaluation
   as the consumer's own request or update (its reset wins such a tie: Dagster orders trigger and
   reset by time only for conditions without an `|`), and the mesh's condition must not reset on
   the end of a run automation requested. `AutomationCondition.all_new_updates_have_run_tags` is a
   documented method of the public class but not in Dagster's API docs, and the tag it is given
   (`dagster/from_automation_condition`, which Dagster's asset daemon sets) is Dagster's system
   tag. Gain: the stream's landing-to-consumer p50 20.4 s to about 10 s (with the sensors every
   daemon loop; docs/performance.md, *the stream*). Tests: `tests/test_consumer_automation.py`
   (the operand's behaviour) and `tests/test_daemon.py` (the daemon's automation runs carry the
   tag).

`gx_duckdb` (Great Expectations):

1. Great Expectations' regex expectations on DuckDB. GX's
   `get_dialect_regex_expression` has no DuckDB operator (no GX issue asks for one; the native
   DuckDB execution engine proposed in GX PR #12084 would bring it), so `expect_column_values_to_
   match_regex` and its five relatives raise on DuckDB; the six GX metric modules that use the helper
   get one that answers DuckDB with `regexp_matches`. Gain: a product with a regex expectation keeps
   its checks in DuckDB instead of GX's pandas path, which copies the table into memory: several
   times faster, in a fraction of the memory (figures in docs/performance.md, measured with
   `docs/measure_gx_regex.py`). Alarm: `tests/test_upstream.py`
   (GX still lacks DuckDB regex; exactly these six modules import the helper, by name; its
   signature).

Not imports, but configuration that names Dagster's modules as its documentation does: the dev
instance's `run_coordinator` is `dagster.core.run_coordinator.DefaultRunCoordinator`.

Not here, because a public route exists: GX's DuckDB cursor reset (GX issue #10738) is avoided
with SQLAlchemy's public `creator` hook (`checks.gx_duckdb.AutocommitConnection`), and
`tests/test_upstream.py` says when GX no longer needs it; dbt's specs come from dagster-dbt's
`@dbt_assets`, dbt runs through `dbtRunner` with the Manifest its own parse returned.

May import only: nothing of the platform (each fence stands alone).
"""
