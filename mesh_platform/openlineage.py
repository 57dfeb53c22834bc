"""OpenLineage run events for every materialization of a mesh asset, through the OpenLineage client.

Each asset step emits START, then COMPLETE (published, with its checks as data-quality assertions)
or FAIL (blocking checks failed, or an error). Outputs carry schema and ownership facets; inputs are
the products and internal assets the step read. The transport is the client's own: a JSON-lines
file `MESH_HOME/lineage/openlineage.jsonl` by default, HTTP when `OPENLINEAGE_URL` is set (read when
an event is sent). Lineage is never a reason for a run to fail: a transport error is logged.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mesh_platform.descriptor.model import Descriptor, Product

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
    ):
        self.home, self.descriptor, self.asset, self.product = home, descriptor, asset, product
        self.reads = [_dataset_ref(descriptor.domain, r) for r in reads]
        self.dagster_run_id, self.job_name = dagster_run_id, job_name
        self.done = False
        self.run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{dagster_run_id}/{descriptor.domain}.{asset}/{attempt}"))

    @property
    def name(self) -> str:
        return f"{self.descriptor.domain}.{self.asset}"

    def start(self) -> None:
        self._emit("START")

    def complete(self, outcomes: Sequence[Any] = (), rows: int | None = None) -> None:
        self._emit("COMPLETE", outcomes, rows=rows)

    def fail(self, message: str, outcomes: Sequence[Any] = ()) -> None:
        self._emit("FAIL", outcomes, error=message)

    def _output_facets(self, outcomes: Sequence[Any]) -> dict[str, Any]:
        from openlineage.client.facet_v2 import (
            data_quality_assertions_dataset,
            ownership_dataset,
            schema_dataset,
        )

        owner = self.descriptor.owner_of(self.product) if self.product else self.descriptor.owner
        facets: dict[str, Any] = {
            "ownership": ownership_dataset.OwnershipDatasetFacet(
                owners=[ownership_dataset.Owner(name=owner, type="OWNER")]
            )
        }
        if self.product is not None:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type, description=c.description)
                    for c in self.product.columns
                ]
            )
        if outcomes:
            facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(
                        assertion=o.name, success=o.passed, severity=o.severity, description=o.summary or None
                    )
                    for o in outcomes
                ]
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
                job=Job(namespace=NAMESPACE, name=self.name),
                producer=PRODUCER,
                inputs=[InputDataset(namespace=NAMESPACE, name=ref) for ref in self.reads],
                outputs=[
                    OutputDataset(
                        namespace=NAMESPACE,
                        name=self.name,
                        facets=self._output_facets(outcomes),
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
