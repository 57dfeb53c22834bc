"""OpenLineage run events for every materialization of a mesh asset, through the OpenLineage client.

Each asset step emits START, then COMPLETE (published, with its checks as data-quality assertions,
each naming its column) or FAIL (blocking checks failed, or an error). The job carries its owner and
the file and line of the code that builds the asset (`sourceCodeLocation`, with the git commit
where the project is a git checkout). Outputs carry schema, ownership and, once the mesh knows it,
column lineage (`columnLineage`: each column's input fields with OpenLineage's transformation
types, and the fields the whole output is filtered, joined, grouped or sorted by); a product's
output also carries its published version. Inputs are the products and internal assets the step
read; a product read carries its schema and the published version the step read. Every dataset
carries a `symlinks` and a `storage` facet naming where its data lives: a product's Parquet file in
the store, an internal asset's table in the domain's warehouse. The transport is the client's own:
a JSON-lines file `MESH_HOME/lineage/openlineage.jsonl` by default, HTTP when `OPENLINEAGE_URL` is
set (read when an event is sent). Lineage is never a reason for a run to fail: a transport error is
logged.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.project.locations import MeshHome

NAMESPACE = "mesh"
PRODUCER = "https://github.com/pharmacy-mesh/mesh_platform"
URL_ENV = "OPENLINEAGE_URL"
log = logging.getLogger(__name__)
_clients: dict[str, Any] = {}


def event_log(home: Path) -> Path:
    return home / "lineage" / "openlineage.jsonl"


def _client(home: Path) -> Any:
    from openlineage.client import OpenLineageClient

    url = os.environ.get(URL_ENV)
    config = (
        {"type": "http", "url": url, "timeout": 5}
        if url
        else {"type": "file", "log_file_path": str(event_log(home)), "append": True}
    )
    key = repr(sorted(config.items()))
    if key not in _clients:
        _clients[key] = OpenLineageClient(config={"transport": config})
    return _clients[key]


def _dataset_ref(domain: str, ref: str) -> str:
    return ref if "." in ref else f"{domain}.{ref}"


@functools.cache
def _git_commit(folder: str) -> str | None:
    """The commit checked out at `folder` (None: not a git checkout), once per process."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _metadata_value(metadata: Mapping[str, Any] | None, key: str) -> Any:
    value = (metadata or {}).get(key)
    return getattr(value, "value", value)  # a Dagster MetadataValue, or the plain value


class AssetLineage:
    """The OpenLineage run of one asset in one Dagster run."""

    def __init__(
        self,
        home: Path,
        descriptor: Descriptor,
        asset: str,
        reads: Sequence[str],
        dagster_run_id: str,
        job_name: str,
        product: Product | None = None,
        attempt: int = 0,
        definition_metadata: Mapping[str, Any] | None = None,
    ):
        """`definition_metadata`: the asset's Dagster metadata, whose `mesh/column_lineage` (see
        `lineage.dagster_metadata`) gives the column lineage and the code's file and line."""
        self.home, self.descriptor, self.asset, self.product = home, descriptor, asset, product
        self.reads = [_dataset_ref(descriptor.domain, r) for r in reads]
        self.dagster_run_id, self.job_name = dagster_run_id, job_name
        self.done = False
        self.run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{dagster_run_id}/{descriptor.domain}.{asset}/{attempt}"))
        self.columns: dict[str, Any] = _metadata_value(definition_metadata, "mesh/column_lineage") or {}
        self.grants: dict[str, Any] = {}  # product ref -> the governed read's grant (version, schema, file)

    def inputs_read(self, grants: Sequence[Any]) -> None:
        """The products this step read (`governance.read.ReadGrant`s): their versions and schemas."""
        self.grants = {g.read_as: g for g in grants if g.read_as in self.reads}

    @property
    def name(self) -> str:
        return f"{self.descriptor.domain}.{self.asset}"

    def start(self) -> None:
        self._emit("START")

    def complete(self, outcomes: Sequence[Any] = (), rows: int | None = None) -> None:
        self._emit("COMPLETE", outcomes, rows=rows)

    def fail(self, message: str, outcomes: Sequence[Any] = ()) -> None:
        self._emit("FAIL", outcomes, error=message)

    def _output_facets(self, outcomes: Sequence[Any], failed: bool = False) -> dict[str, Any]:
        from openlineage.client.facet_v2 import (
            data_quality_assertions_dataset,
            ownership_dataset,
            schema_dataset,
        )

        owner = self.descriptor.owner_of(self.product) if self.product else self.descriptor.owner
        facets: dict[str, Any] = {
            "ownership": ownership_dataset.OwnershipDatasetFacet(
                owners=[ownership_dataset.Owner(name=owner, type="OWNER")]
            ),
            **self._where_facets(self.name),
        }
        if self.product is not None and self.done and not failed:
            from openlineage.client.facet_v2 import dataset_version_dataset

            from mesh_platform.storage.product_store import ProductStore

            published = ProductStore(MeshHome(self.home)).current(self.descriptor.domain, self.asset)
            if published is not None:
                facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=published.version)
        if self.product is not None:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type, description=c.description)
                    for c in self.product.columns
                ]
            )
        if outcomes:
            columns = (
                {name: (e.columns or [None])[0] for name, e in self.product.named_expectations()}
                if self.product
                else {}
            )
            facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(
                        assertion=o.name,
                        success=o.passed,
                        column=columns.get(o.name),
                        severity=o.severity,
                        description=o.summary or None,
                    )
                    for o in outcomes
                ]
            )
        if self.columns.get("columns"):
            facets["columnLineage"] = self._column_lineage_facet()
        return facets

    def _column_lineage_facet(self) -> Any:
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        def field(use: Mapping[str, str]) -> Any:
            relation, _, column = use["from"].rpartition(".")
            transformation = cl.Transformation(type=use["kind"], subtype=use["subtype"], masking=False)
            return cl.InputField(namespace=NAMESPACE, name=relation, field=column, transformations=[transformation])

        declared = set(self.columns.get("declared", []))
        return cl.ColumnLineageDatasetFacet(
            fields={
                column: cl.Fields(
                    inputFields=[field(u) for u in uses],
                    transformationDescription="declared in the descriptor (derived_from)"
                    if column in declared
                    else None,
                )
                for column, uses in self.columns["columns"].items()
            },
            dataset=[field(u) for u in self.columns.get("dataset", [])],
        )

    def _where_facets(self, ref: str) -> dict[str, Any]:
        """Symlinks and storage: a product's Parquet file in the store (the version read or published),
        an internal asset's table in its domain's warehouse."""
        from openlineage.client.facet_v2 import storage_dataset, symlinks_dataset

        from mesh_platform.pg_warehouse import warehouse_kind
        from mesh_platform.storage.product_store import ProductStore

        domain, _, name = ref.partition(".")
        home = MeshHome(self.home)
        grant = self.grants.get(ref)
        published = grant.published if grant is not None else None
        is_product = grant is not None or (domain == self.descriptor.domain and self.descriptor.product(name))
        if is_product and published is None:
            published = ProductStore(home).current(domain, name)
        if is_product:
            location = published.path if published is not None else str(home.product_dir(domain, name))
            identifier = symlinks_dataset.Identifier(namespace="file", name=location, type="FILE")
            storage = storage_dataset.StorageDatasetFacet(storageLayer="file", fileFormat="parquet")
        elif warehouse_kind() == "postgres":
            identifier = symlinks_dataset.Identifier(namespace="postgres", name=f"{domain}.main.{name}", type="TABLE")
            storage = storage_dataset.StorageDatasetFacet(storageLayer="postgres")
        else:
            table = f"{home.warehouse(domain)}#main.{name}"
            identifier = symlinks_dataset.Identifier(namespace="duckdb", name=table, type="TABLE")
            storage = storage_dataset.StorageDatasetFacet(storageLayer="duckdb", fileFormat="duckdb")
        facets: dict[str, Any] = {"symlinks": symlinks_dataset.SymlinksDatasetFacet(identifiers=[identifier])}
        facets["storage"] = storage
        return facets

    def _input_facets(self, ref: str) -> dict[str, Any]:
        from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

        facets = self._where_facets(ref)
        grant = self.grants.get(ref)
        if grant is not None:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type, description=c.description)
                    for c in grant.product.columns
                ]
            )
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=grant.published.version
            )
        return facets

    def _job_facets(self) -> dict[str, Any]:
        from openlineage.client.facet_v2 import ownership_job, source_code_location_job

        owner = self.descriptor.owner_of(self.product) if self.product else self.descriptor.owner
        facets: dict[str, Any] = {
            "ownership": ownership_job.OwnershipJobFacet(owners=[ownership_job.Owner(name=owner, type="OWNER")])
        }
        file, line, code = self.columns.get("file"), self.columns.get("line"), self.columns.get("path")
        if file and code:
            commit = _git_commit(str(Path(code).parent)) if Path(code).parent.exists() else None
            facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
                type="git" if commit else "file",
                url=f"{Path(code).resolve().as_uri()}#L{line or 1}",
                path=file,
                version=commit,
            )
        return facets

    def _emit(self, state: str, outcomes: Sequence[Any] = (), error: str | None = None, rows: int | None = None):
        self.done = state != "START"
        try:
            from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
            from openlineage.client.facet_v2 import error_message_run, output_statistics_output_dataset, parent_run

            run_facets: dict[str, Any] = {
                "parent": parent_run.ParentRunFacet(
                    run=parent_run.Run(runId=self.dagster_run_id),
                    job=parent_run.Job(namespace=NAMESPACE, name=self.job_name),
                )
            }
            if error:
                run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                    message=error[:4000], programmingLanguage="python"
                )
            output_facets = (
                {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)}
                if rows is not None
                else {}
            )
            event = RunEvent(
                eventType=getattr(RunState, state),
                eventTime=datetime.now(UTC).isoformat(),
                run=Run(runId=self.run_id, facets=run_facets),
                job=Job(namespace=NAMESPACE, name=self.name, facets=self._job_facets()),
                producer=PRODUCER,
                inputs=[
                    InputDataset(namespace=NAMESPACE, name=ref, facets=self._input_facets(ref)) for ref in self.reads
                ],
                outputs=[
                    OutputDataset(
                        namespace=NAMESPACE,
                        name=self.name,
                        facets=self._output_facets(outcomes, failed=state == "FAIL"),
                        outputFacets=output_facets,
                    )
                ],
            )
            path = event_log(self.home)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # whole events in the file, even with concurrent runs
                _client(self.home).emit(event)
        except Exception as exc:  # lineage must never fail a run
            log.warning("OpenLineage %s event for %s not sent: %s", state, self.name, exc)
