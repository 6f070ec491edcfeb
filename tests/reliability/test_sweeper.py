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
from tests.conftest import ROOT, STREAMS_TABLE, worker_env
from tests.support.collections import nap_script, new_owner, seed_collection
from tests.support.fakeecs import FakeEcs
from tests.support.scripts import USERNAME, add_and_nap_script, job_item

OOM = "OutOfMemoryError: Container killed due to memory usage"
TASK_DEF = "arn:aws:ecs:us-east-1:000000000000:task-definition/plus-worker:7"


@pytest.fixture
def ecs() -> Iterator[FakeEcs]:
    fake = FakeEcs()
    yield fake
    fake.close()


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


def start_held_job(dao: Any, put_job: Any, start_worker: Any, ecs: FakeEcs, name: str,
                   lease_seconds: float) -> tuple[str, str, Any]:
    """A job held by a real worker napping for a minute: (job id, its task ARN, the process)."""
    job_id = put_job(job_item(add_and_nap_script(60), input_data={"a": 1, "b": 2}))
    arn = f"arn:aws:ecs:us-east-1:000000000000:task/c/{name}"
    proc = start_worker(job_id, LEASE_SECONDS=lease_seconds, HEARTBEAT_SECONDS=0.5,
                        ECS_CONTAINER_METADATA_URI_V4=ecs.metadata_uri(arn))
    wait_for(lambda: (dao.docs.get(job_id) or {}).get("fargate_task_arn") == arn)
    # the index row follows the claim: a kill before it lands leaves a job the sweeper cannot find
    index = RunningIndex(dao.docs.client, STREAMS_TABLE)
    wait_for(lambda: any(row["job_id"] == job_id for row in index.rows()))
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


def test_the_index_row_is_written_at_claim_and_removed_at_finish(dao, put_job, run_worker):
    job_id = put_job(job_item(add_and_nap_script(0.01), input_data={"a": 1, "b": 2}))
    index = RunningIndex(dao.docs.client, STREAMS_TABLE)
    assert run_worker(job_id, LEASE_SECONDS=30).code == 0
    assert all(row["job_id"] != job_id for row in index.rows())
    stored = dao.docs.client.get_item(TableName=STREAMS_TABLE, Key={
        "stream_id": {"S": RUNNING_STREAM}, "timestamp": {"N": str(row_key(job_id))}})
    assert "Item" not in stored


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


def test_sweep_without_a_cluster_is_a_configuration_error(stack, ecs):
    run = sweep(stack, ecs, CLUSTER=None)
    assert run.returncode == 2 and "CLUSTER: missing" in run.stderr
