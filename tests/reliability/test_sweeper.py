"""The sweeper (SPEC §8.3, issue 13 §4): a worker killed with -9 leaves its job RUNNING with a lease
that runs out; ``RUN_MODE=SWEEP`` then relaunches it or records it FAILED with the reason ECS gives
(an ECS API emulator here, since moto cannot set a stop code), never touching a live job, and two
sweepers at once act once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from feaas.dao import RunningIndex
from feaas.dao.running import RUNNING_STREAM, row_key
from feaas.jobs.status import JobStatus, status_of
from feaas.jobs.sweep import UNCLAIMED_ROW_S, Sweeper
from tests.conftest import ROOT, STREAMS_TABLE, worker_env
from tests.support.collections import nap_script, new_owner, seed_collection
from tests.support.dynamo_requests import is_claim
from tests.support.fakeecs import TASK_PREFIX, FakeEcs
from tests.support.faultproxy import FaultProxy
from tests.support.scripts import USERNAME, add_and_nap_script, job_item
from tests.support.waiting import wait_for

OOM = "OutOfMemoryError: Container killed due to memory usage"
TASK_DEF = "arn:aws:ecs:us-east-1:000000000000:task-definition/plus-worker:7"


@pytest.fixture
def ecs() -> Iterator[FakeEcs]:
    fake = FakeEcs()
    yield fake
    fake.close()



def start_held_job(dao: Any, put_job: Any, start_worker: Any, ecs: FakeEcs, name: str,
                   lease_seconds: float) -> tuple[str, str, Any]:
    """A job held by a real worker napping for a minute: (job id, its task ARN, the process)."""
    job_id = put_job(job_item(add_and_nap_script(60), input_data={"a": 1, "b": 2}))
    arn = f"arn:aws:ecs:us-east-1:000000000000:task/c/{name}"
    proc = start_worker(job_id, LEASE_SECONDS=lease_seconds, HEARTBEAT_SECONDS=0.5,
                        ECS_CONTAINER_METADATA_URI_V4=ecs.metadata_uri(arn))
    wait_for(lambda: (dao.docs.get(job_id) or {}).get("fargate_task_arn") == arn)
    return job_id, arn, proc


def killed_job(dao: Any, put_job: Any, start_worker: Any, ecs: FakeEcs) -> tuple[str, dict[str, Any]]:
    """kill -9 a worker mid-run; ECS (the emulator) says it ran out of memory. Returns the job as left."""
    job_id, arn, proc = start_held_job(dao, put_job, start_worker, ecs, "dead", lease_seconds=2)
    proc.kill()
    proc.communicate()
    ecs.stopped(arn, stop_code="EssentialContainerExited", reason="Essential container in task exited",
                container_reason=OOM, exit_code=137,
                environment={"RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": USERNAME})
    left = dao.docs.get(job_id)
    assert left["status"] == "RUNNING"
    wait_for(lambda: time.time() > int(left["lease_expires_at"]) + 1, timeout=10)
    return job_id, left


def sweep(stack: Any, ecs: FakeEcs, **env: Any) -> subprocess.CompletedProcess[str]:
    settings = {"RUN_MODE": "SWEEP", "JOB_ID": None, "USERNAME": None, "PRIMARY_BUCKET": None,
                "AWS_ENDPOINT_URL_ECS": ecs.url, "CLUSTER": "plus-worker", "TASK_FAMILY": "plus-worker",
                "SUBNETS": "subnet-1,subnet-2", "SECURITY_GROUPS": "sg-1"}
    environment = worker_env(stack, "", **(settings | env))
    return subprocess.run([sys.executable, "-m", "src.worker"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def finished_counts(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    found = [line for line in lines if line.get("event") == "sweep_finished"]
    assert run.returncode == 0 and found, run.stdout[-2000:] + run.stderr[-2000:]
    return found[0]


def calls_for(ecs: FakeEcs, job_id: str) -> list[dict[str, Any]]:
    def env(call: dict[str, Any]) -> dict[str, str]:
        return {e["name"]: e["value"] for e in call["overrides"]["containerOverrides"][0]["environment"]}
    return [env(c) | {"taskDefinition": c["taskDefinition"], "clientToken": c["clientToken"]}
            for c in ecs.run_task_calls if env(c).get("JOB_ID") == job_id]


def rows_of(dao: Any, job_id: str) -> list[dict[str, Any]]:
    return [row for row in RunningIndex(dao.docs.client, STREAMS_TABLE).rows() if row["job_id"] == job_id]


def test_the_index_row_is_written_at_claim_and_removed_at_finish(dao, put_job, run_worker):
    job_id = put_job(job_item(add_and_nap_script(0.01), input_data={"a": 1, "b": 2}))
    run = run_worker(job_id, LEASE_SECONDS=30)
    assert run.code == 0
    assert rows_of(dao, job_id) == []
    stored = dao.docs.client.get_item(TableName=STREAMS_TABLE, Key={
        "stream_id": {"S": RUNNING_STREAM}, "timestamp": {"N": str(row_key(job_id, run.job["finished_by"]))}})
    assert "Item" not in stored


def test_a_refused_claim_removes_its_own_row_and_never_the_holders(dao, put_job, start_worker, run_worker,
                                                                    ecs):
    # Given a job held by a live worker, with its row in the index
    job_id, _, live = start_held_job(dao, put_job, start_worker, ecs, "holder", lease_seconds=60)
    holder = dao.docs.get(job_id)["lease_owner"]
    assert [row["lease_owner"] for row in rows_of(dao, job_id)] == [holder]
    # When a second worker tries to claim it (its row is written first, then its claim is refused)
    second = run_worker(job_id)
    # Then it exits 3, and the index holds the holder's row only, unchanged
    assert second.code == 3, second.stdout[-2000:]
    assert [row["lease_owner"] for row in rows_of(dao, job_id)] == [holder]
    live.kill()
    live.communicate()


def killed_around_the_claim(stack: Any, dao: Any, put_job: Any, start_worker: Any, ecs: FakeEcs,
                            *, claim_landed: bool) -> str:
    """kill -9 a worker at its claim, deterministically: the fault proxy holds the claim request
    (not applied: killed between the index write and the claim) or its reply (applied: killed right
    after the claim), and the kill comes while it is held. Returns the job id."""
    job_id = put_job(job_item(add_and_nap_script(60), input_data={"a": 1, "b": 2}))
    arn = f"{TASK_PREFIX}claim-{'landed' if claim_landed else 'held'}-{job_id[-8:]}"
    with FaultProxy(stack.dynamodb_port, outage_from=is_claim, outage_after_server=claim_landed) as proxy:
        proc = start_worker(job_id, LEASE_SECONDS=2, HEARTBEAT_SECONDS=0.5,
                            AWS_ENDPOINT_URL_DYNAMODB=proxy.url,
                            ECS_CONTAINER_METADATA_URI_V4=ecs.metadata_uri(arn))
        assert proxy.outage_started.wait(60), "the worker never sent its claim"
        proc.kill()
        proc.communicate()
    ecs.stopped(arn, stop_code="EssentialContainerExited", reason="Essential container in task exited",
                container_reason=OOM, exit_code=137,
                environment={"RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": USERNAME})
    return job_id


def test_a_worker_killed_right_after_its_claim_is_found_and_swept(stack, dao, put_job, start_worker, ecs,
                                                                   report):
    # Given a worker killed -9 after its claim landed and before it heard the reply
    job_id = killed_around_the_claim(stack, dao, put_job, start_worker, ecs, claim_landed=True)
    left = dao.docs.get(job_id)
    assert left["status"] == "RUNNING"
    # Then its row, written before the claim, names the lease holder
    assert [row["lease_owner"] for row in rows_of(dao, job_id)] == [left["lease_owner"]]
    # When the lease has run out and the sweeper runs
    wait_for(lambda: time.time() > int(left["lease_expires_at"]) + 1, timeout=10)
    counts = finished_counts(sweep(stack, ecs, MAX_ATTEMPTS=1))
    # Then the job is recorded FAILED with ECS's reason, and its row is gone
    after = dao.docs.get(job_id)
    if after["status"] == "RUNNING":
        report.add(stuck_jobs=1)
    assert after["status"] == "FAILED" and after["resumable"] is True, after
    assert OOM in after["error_message"] and "(exit code 137)" in after["error_message"]
    assert counts["recorded_failed"] >= 1
    assert rows_of(dao, job_id) == []
    report.add(tasks_killed=1, tasks_swept=1)


class OneJobIndex(RunningIndex):
    """The index as one job's rows only (an in-process sweep must not touch other tests' jobs)."""

    def __init__(self, client: Any, table: str, job_id: str) -> None:
        super().__init__(client, table)
        self.job_id = job_id

    def rows(self, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        return (row for row in super().rows(page_size=page_size) if row["job_id"] == self.job_id)


class NoEcs:
    def describe_tasks(self, **kwargs: Any) -> Any:
        raise AssertionError("a job that was never claimed needs no ECS call")

    run_task = describe_tasks


def test_a_worker_killed_between_its_index_row_and_its_claim_leaves_the_job_untouched(
        stack, dao, put_job, start_worker, ecs):
    # Given a worker killed -9 after its index row was written and before its claim reached DynamoDB
    job_id = killed_around_the_claim(stack, dao, put_job, start_worker, ecs, claim_landed=False)
    before = dao.docs.get(job_id)
    assert status_of(before) is JobStatus.INITIALIZING and "lease_owner" not in before
    [row] = rows_of(dao, job_id)
    # When the sweeper runs: a claim that may still land keeps its row, and the job is not touched
    counts = finished_counts(sweep(stack, ecs, MAX_ATTEMPTS=1))
    assert counts["claiming"] >= 1
    assert rows_of(dao, job_id) == [row] and dao.docs.get(job_id) == before
    # When it runs once the row is older than any claim can take (a clock that far ahead)
    later = time.time() + UNCLAIMED_ROW_S + 1
    sweeper = Sweeper(docs=dao.docs, index=OneJobIndex(dao.docs.client, STREAMS_TABLE, job_id), ecs=NoEcs(),
                      cluster="plus-worker", build_request=lambda *a: {}, clock=lambda: later)
    counts_later = sweeper.sweep()
    # Then the stale row is removed, and the job (never claimed) is still untouched
    assert counts_later.unindexed == 1 and rows_of(dao, job_id) == []
    assert dao.docs.get(job_id) == before


def test_killed_task_is_relaunched_once_by_two_sweepers_and_a_live_job_is_untouched(
        stack, dao, put_job, start_worker, ecs, report):
    live_id, _, live = start_held_job(dao, put_job, start_worker, ecs, "live", lease_seconds=60)
    live_before = dao.docs.get(live_id)
    job_id, _ = killed_job(dao, put_job, start_worker, ecs)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: sweep(stack, ecs, MAX_ATTEMPTS=3), range(2)))
    counts = [finished_counts(run) for run in runs]
    calls = calls_for(ecs, job_id)
    assert len(calls) == 1, calls  # two sweepers at once: one RunTask
    assert sum(c["relaunched"] for c in counts) >= 1
    assert calls[0]["RUN_MODE"] == "RUN_SCRIPT" and calls[0]["USERNAME"] == USERNAME
    assert calls[0]["taskDefinition"] == TASK_DEF  # the same task definition as the dead task's
    after = dao.docs.get(job_id)
    assert after["status"] == "RUNNING" and after["lease_owner"].startswith("sweeper:")
    assert OOM in after["last_stop_reason"]
    assert calls_for(ecs, live_id) == []
    live_after = dao.docs.get(live_id)
    assert live_after["status"] == "RUNNING" and live_after["lease_owner"] == live_before["lease_owner"]
    # the relaunched task (a worker started with the request's environment) takes the job over
    relaunched = start_worker(job_id, RUN_MODE=calls[0]["RUN_MODE"], LEASE_SECONDS=30)
    wait_for(lambda: (dao.docs.get(job_id) or {}).get("attempt") == 2)
    relaunched.kill()
    relaunched.communicate()
    live.kill()
    live.communicate()
    report.add(tasks_killed=1, tasks_swept=1)


def test_killed_task_past_max_attempts_is_recorded_failed_with_ecs_reason(
        stack, dao, put_job, start_worker, ecs, report):
    live_id, _, live = start_held_job(dao, put_job, start_worker, ecs, "live2", lease_seconds=60)
    live_owner = dao.docs.get(live_id)["lease_owner"]
    job_id, _ = killed_job(dao, put_job, start_worker, ecs)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: sweep(stack, ecs, MAX_ATTEMPTS=1), range(2)))
    counts = [finished_counts(run) for run in runs]
    after = dao.docs.get(job_id)
    assert after["status"] == "FAILED" and after["resumable"] is True
    assert after["error_message"] == (
        f"the task was stopped: EssentialContainerExited: Essential container in task exited: {OOM} "
        "(exit code 137)")
    assert "lease_owner" not in after
    assert calls_for(ecs, job_id) == []
    assert sum(c["recorded_failed"] for c in counts) >= 1
    assert dao.docs.get(live_id)["lease_owner"] == live_owner and dao.docs.get(live_id)["status"] == "RUNNING"
    assert all(row["job_id"] != job_id for row in RunningIndex(dao.docs.client, STREAMS_TABLE).rows())
    live.kill()
    live.communicate()
    report.add(tasks_killed=1, tasks_swept=1)


def test_a_shared_run_is_lost_only_when_no_task_holds_a_live_lease(
        stack, dao, put_job, start_worker, ecs, report):
    # Given a collection run shared by two tasks, one killed -9 (its lease runs out)
    owner = new_owner()
    seed_collection(dao, owner, 1500)
    job_id = put_job(job_item(nap_script(0.5), collection_owner=owner))
    arns = [f"arn:aws:ecs:us-east-1:000000000000:task/c/shared-{i}" for i in range(2)]
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=2, LEASE_SECONDS=lease,
                          HEARTBEAT_SECONDS=0.5, ECS_CONTAINER_METADATA_URI_V4=ecs.metadata_uri(arn))
             for arn, lease in zip(arns, (2, 6), strict=True)]
    wait_for(lambda: len((dao.docs.get(job_id) or {}).get("chunks") or {}) == 2)
    index = RunningIndex(dao.docs.client, STREAMS_TABLE)
    wait_for(lambda: any(row["job_id"] == job_id for row in index.rows()))
    procs[0].kill()
    procs[0].communicate()
    for arn in arns:
        ecs.stopped(arn, stop_code="EssentialContainerExited", reason="Essential container in task exited",
                    container_reason=OOM, exit_code=137,
                    environment={"RUN_MODE": "RUN_COLLECTION", "JOB_ID": job_id, "USERNAME": USERNAME})
    def dead_lease_over() -> bool:
        tasks = dao.docs.get(job_id)["tasks"].values()
        return time.time() > min(int(t["lease_expires_at"]) for t in tasks) + 1

    wait_for(dead_lease_over, timeout=10)
    # When the sweeper runs while the other task lives: the job is left alone
    assert finished_counts(sweep(stack, ecs, MAX_ATTEMPTS=3))["skipped_live"] >= 1
    assert calls_for(ecs, job_id) == [] and dao.docs.get(job_id)["status"] == "RUNNING"
    # and once the last task is killed too and its lease has run out, the job is relaunched
    procs[1].kill()
    procs[1].communicate()
    job = dao.docs.get(job_id)
    wait_for(lambda: time.time() > max(int(t["lease_expires_at"]) for t in job["tasks"].values()) + 1,
             timeout=20)
    assert finished_counts(sweep(stack, ecs, MAX_ATTEMPTS=3))["relaunched"] == 1
    calls = calls_for(ecs, job_id)
    assert len(calls) == 2 and {c["RUN_MODE"] for c in calls} == {"RUN_COLLECTION"}  # one per dead task
    after = dao.docs.get(job_id)
    assert after["status"] == "RUNNING" and after["attempt"] == 2
    assert all(t["lease_owner"].startswith("sweeper:") for t in after["tasks"].values())
    report.add(tasks_killed=2, tasks_swept=2)


def test_a_killed_aws_batch_child_is_relaunched_without_asking_ecs_about_it(stack, dao, put_job, start_worker,
                                                                            ecs):
    # Given a collection run held by one AWS Batch array child (no ECS metadata endpoint), killed -9
    owner = new_owner()
    seed_collection(dao, owner, 600)
    job_id = put_job(job_item(nap_script(0.5), collection_owner=owner))
    proc = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=2, LEASE_SECONDS=2,
                        HEARTBEAT_SECONDS=0.5, SHARD_COUNT="2", AWS_BATCH_JOB_ARRAY_INDEX="1",
                        AWS_BATCH_JOB_ID="5e1f-batch:1")
    wait_for(lambda: any(t.get("batch_job_id") == "5e1f-batch:1"
                         for t in ((dao.docs.get(job_id) or {}).get("tasks") or {}).values()))
    index = RunningIndex(dao.docs.client, STREAMS_TABLE)
    wait_for(lambda: any(row.get("batch_job_id") == "5e1f-batch:1" for row in index.rows()))
    proc.kill()
    proc.communicate()
    job = dao.docs.get(job_id)
    wait_for(lambda: time.time() > max(int(t["lease_expires_at"]) for t in job["tasks"].values()) + 1,
             timeout=20)
    # When the sweeper runs: ECS is not asked about a Batch job id; the job is relaunched on ECS
    # with the child's run mode and user, and the reason names the Batch child
    assert finished_counts(sweep(stack, ecs, MAX_ATTEMPTS=3))["relaunched"] == 1
    assert ecs.describe_tasks_calls == []
    [call] = calls_for(ecs, job_id)
    assert (call["RUN_MODE"], call["USERNAME"]) == ("RUN_COLLECTION", USERNAME)
    after = dao.docs.get(job_id)
    assert after["status"] == "RUNNING"
    assert after["last_stop_reason"] == (
        "the AWS Batch job 5e1f-batch:1 stopped renewing its lease (AWS Batch DescribeJobs tells why)")


def test_sweep_without_a_cluster_is_a_configuration_error(stack, ecs):
    run = sweep(stack, ecs, CLUSTER=None)
    assert run.returncode == 2 and "CLUSTER: missing" in run.stderr
