"""When a consumer's automation requests a run, on a real (ephemeral) Dagster instance: evaluations
of the mesh's consumer condition with products published between them, as the daemon's ticks see
them while files keep landing, and with the consumer run by automation or by hand."""

from __future__ import annotations

import dagster as dg
import pytest

from mesh_platform.orchestration.automation import consumer_condition
from mesh_platform.upstream.dagster_automation import AUTOMATION_RUN_TAG

PRODUCER = dg.AssetKey(["scheduling", "appointments"])
CONSUMER = dg.AssetKey(["patient_360", "patient_journey"])


@dg.asset(key=PRODUCER)
def appointments() -> None: ...


@dg.asset(key=CONSUMER, deps=[PRODUCER], automation_condition=consumer_condition())
def patient_journey() -> None: ...


class Ticks:
    """The automation sensor's evaluations, each from the cursor the previous one left, and the runs
    between them."""

    def __init__(self) -> None:
        self.job = dg.define_asset_job("patient_journey_job", selection=[CONSUMER])
        self.defs = dg.Definitions(assets=[appointments, patient_journey], jobs=[self.job])
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None
        self.tick()  # the first evaluation requests nothing for what happened before it

    def publish(self) -> None:
        self.instance.report_runless_asset_event(dg.AssetMaterialization(PRODUCER))

    def consumer_run(self, *, by_automation: bool) -> None:
        tags = {AUTOMATION_RUN_TAG: "true"} if by_automation else {}
        result = self.defs.resolve_job_def("patient_journey_job").execute_in_process(instance=self.instance, tags=tags)
        assert result.success

    def consumer_run_in_progress(self) -> dg.DagsterRun:
        job = self.defs.resolve_job_def("patient_journey_job")
        return self.instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)

    def tick(self) -> int:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return result.get_num_requested(CONSUMER)


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


def test_a_publication_seen_with_the_consumers_own_run_requests_it_again(ticks: Ticks) -> None:
    ticks.publish()
    assert ticks.tick() == 1
    # its run read the appointments and published; the next batch published appointments after
    # that read, before the next evaluation (Dagster's `eager` forgets this one)
    ticks.consumer_run(by_automation=True)
    ticks.publish()
    assert ticks.tick() == 1
    ticks.consumer_run(by_automation=True)
    assert ticks.tick() == 0, "nothing was published since its last request"


def test_a_publication_during_a_run_that_outlasts_an_evaluation_requests_it_again(ticks: Ticks) -> None:
    ticks.publish()
    assert ticks.tick() == 1
    running = ticks.consumer_run_in_progress()
    ticks.publish()  # after the run read the appointments
    assert ticks.tick() == 0, "a run of it is in progress"
    ticks.instance.delete_run(running.run_id)
    ticks.consumer_run(by_automation=True)  # the run ends, in a later evaluation
    assert ticks.tick() == 1
    assert ticks.tick() == 0


def test_a_request_whose_run_published_nothing_is_not_repeated_without_a_new_publication(ticks: Ticks) -> None:
    ticks.publish()
    assert ticks.tick() == 1
    assert ticks.tick() == 0  # its run failed: no retry until something new is published
    ticks.publish()
    assert ticks.tick() == 1


def test_a_consumer_run_by_hand_after_its_producer_is_not_run_again(ticks: Ticks) -> None:
    # as `mesh run` or the UI does: the producer, then the consumer, both between two evaluations
    ticks.publish()
    ticks.consumer_run(by_automation=False)
    assert ticks.tick() == 0
    assert ticks.tick() == 0
