"""The known gaps of issue 13 §7 on the real local stack: a DynamoDB outage during the final write is
waited out; SIGTERM while DynamoDB is down keeps the 20 s budget (exit 75, the job left RUNNING with
its lease to expire, then taken by the sweeper), during the run and during the claim's own writes
(whatever landed is found through the index row written before the claim); a final write whose
reply is lost is recognised as the worker's own (exit 0 / 1, never 3), for a whole job and for a
run shared by several tasks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from feaas.dao import RunningIndex
from feaas.jobs.status import JobStatus, status_of
from feaas.stopping import SIGTERM_BUDGET_S
from tests.conftest import ROOT, STREAMS_TABLE, worker_env
from tests.support import localstack
from tests.support.collections import new_owner, seed_collection, tag_script
from tests.support.dynamo_requests import is_claim, is_final_write, is_index_write
from tests.support.fakeecs import FakeEcs
from tests.support.faultproxy import FaultProxy
from tests.support.scripts import USERNAME, add_and_nap_script, job_item
from tests.support.waiting import wait_for


@pytest.fixture
def ecs() -> Iterator[FakeEcs]:
    fake = FakeEcs()
    yield fake
    fake.close()


@pytest.fixture
def dynamodb_outage(stack: Any) -> Iterator[Any]:
    """``stop()`` stops DynamoDB Local (its data stays); it runs again when the test ends, whatever
    happens."""

    class Outage:
        def stop(self) -> None:
            localstack.stop_dynamodb(stack)

        def start(self) -> None:
            localstack.start_dynamodb(stack)

    yield Outage()
    localstack.start_dynamodb(stack)  # a no-op when it already runs



def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_dynamodb_down_at_the_final_write_is_waited_out(dao, put_job, start_worker, dynamodb_outage, report):
    # Given a job whose nap ends while DynamoDB is stopped, and a lease far longer than the outage
    job_id = put_job(job_item(add_and_nap_script(2), input_data={"a": 1, "b": 2}))
    proc = start_worker(job_id, LEASE_SECONDS=40, HEARTBEAT_SECONDS=1)
    # claimed: what is left before the final write is the script (the nap)
    wait_for(lambda: (dao.docs.get(job_id) or {}).get("status") == "RUNNING")
    # When DynamoDB stops during the nap and comes back (with its data) well after the nap ended.
    # (botocore's own retries, ~100 s for DynamoDB, cover this outage; finish_in_time's loop
    # beyond them is what the SIGTERM test below exercises.)
    dynamodb_outage.stop()
    time.sleep(12)
    back = time.time()
    dynamodb_outage.start()
    report.add(trials=1, faults_injected=1)
    out, err = proc.communicate(timeout=60)
    # Then the final write, due while DynamoDB was down, went through once it was back
    assert proc.returncode == 0, out[-3000:] + err[-2000:]
    logged = events(out)
    [done] = [e for e in logged if e.get("event") == "script_finished"]
    assert _epoch(done["ts"]) < back
    assert [e["status"] for e in logged if e.get("event") == "job_finished"] == ["SUCCEEDED"]
    job = dao.docs.get(job_id)
    if job["status"] == "RUNNING":
        report.add(stuck_jobs=1)
    assert job["status"] == "SUCCEEDED" and "lease_owner" not in job


def test_sigterm_while_dynamodb_is_down_exits_75_and_the_sweeper_takes_the_job(
        stack, dao, put_job, start_worker, dynamodb_outage, ecs, report):
    # Given a job held by a worker (its task ARN from the ECS emulator's metadata endpoint)
    job_id = put_job(job_item(add_and_nap_script(120), input_data={"a": 1, "b": 2}))
    arn = "arn:aws:ecs:us-east-1:000000000000:task/c/sigterm-outage"
    proc = start_worker(job_id, LEASE_SECONDS=25, HEARTBEAT_SECONDS=1,
                        ECS_CONTAINER_METADATA_URI_V4=ecs.metadata_uri(arn))
    wait_for(lambda: (dao.docs.get(job_id) or {}).get("fargate_task_arn") == arn)
    # claimed (and indexed before that), so the run is under way; a SIGTERM during the claim's own
    # writes is the next test's case
    held = dao.docs.get(job_id)
    # When DynamoDB stops and then ECS sends SIGTERM
    dynamodb_outage.stop()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=40)
    took = time.monotonic() - sent
    report.add(trials=1, faults_injected=2)
    report.worst(took)
    # Then the worker gives up within the SIGTERM budget (SPEC: 20 s) and says so with exit 75
    assert proc.returncode == 75, out[-3000:] + err[-2000:]
    assert took < 25, took
    assert any(e.get("event") == "job_finish_failed" for e in events(out)), out[-3000:]
    # and the job is left as it was: RUNNING, its lease (to expire), no final status half-written
    dynamodb_outage.start()
    left = dao.docs.get(job_id)
    assert left["status"] == "RUNNING" and left["lease_owner"] == held["lease_owner"]
    assert int(left["lease_expires_at"]) >= int(held["lease_expires_at"])
    assert not {"completed_at", "finished_by", "resumable"} & set(left)
    # When the lease has run out and the sweeper runs (ECS says the task exited 75 after SIGTERM)
    ecs.stopped(arn, stop_code="EssentialContainerExited", reason="Essential container in task exited",
                container_reason="", exit_code=75,
                environment={"RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": USERNAME})
    wait_for(lambda: time.time() > int(left["lease_expires_at"]) + 1, timeout=40)
    run = run_sweeper(stack, ecs)
    # Then it records the job FAILED, resumable, with what ECS says
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    after = dao.docs.get(job_id)
    if after["status"] == "RUNNING":
        report.add(stuck_jobs=1)
    assert after["status"] == "FAILED" and after["resumable"] is True, after
    assert "EssentialContainerExited" in after["error_message"] and "(exit code 75)" in after["error_message"]
    assert "lease_owner" not in after
    report.add(tasks_killed=1, tasks_swept=1)


def run_sweeper(stack: Any, ecs: FakeEcs) -> subprocess.CompletedProcess[str]:
    """One pass of ``RUN_MODE=SWEEP`` against the local stack and the ECS emulator (no relaunch)."""
    settings = {"RUN_MODE": "SWEEP", "JOB_ID": None, "USERNAME": None, "PRIMARY_BUCKET": None,
                "AWS_ENDPOINT_URL_ECS": ecs.url, "CLUSTER": "plus-worker", "TASK_FAMILY": "plus-worker",
                "SUBNETS": "subnet-1", "SECURITY_GROUPS": "sg-1", "MAX_ATTEMPTS": "1"}
    return subprocess.run([sys.executable, "-m", "src.worker"], cwd=ROOT,
                          env=worker_env(stack, "", **settings), capture_output=True, text=True, timeout=120)


#: Where DynamoDB goes down during the claim (the fault proxy's outage, started by one exact request):
#: stopped just before the index row (connections refused), no longer answering from the index row
#: on, and no longer answering right after it applied the claim (the lease landed, its reply lost).
CLAIM_OUTAGES = {
    "stopped-at-index-row": (is_index_write, "reset", False),
    "silent-from-index-row": (is_index_write, "blackhole", False),
    "silent-after-the-claim-landed": (is_claim, "blackhole", True),
}


@pytest.mark.parametrize("where", list(CLAIM_OUTAGES))
def test_sigterm_during_the_claim_while_dynamodb_is_down_exits_75_within_the_budget(
        stack, dao, put_job, start_worker, ecs, report, where):
    # Given a worker whose claim meets a DynamoDB outage (botocore alone would retry ~100 s)
    outage_from, outage, after_server = CLAIM_OUTAGES[where]
    job_id = put_job(job_item(add_and_nap_script(60), input_data={"a": 1, "b": 2}))
    arn = f"arn:aws:ecs:us-east-1:000000000000:task/c/sigterm-claim-{where}"
    with FaultProxy(stack.dynamodb_port, outage_from=outage_from, outage=outage,
                    outage_after_server=after_server) as proxy:
        proc = start_worker(job_id, LEASE_SECONDS=3, HEARTBEAT_SECONDS=1, AWS_ENDPOINT_URL_DYNAMODB=proxy.url,
                            ECS_CONTAINER_METADATA_URI_V4=ecs.metadata_uri(arn))
        assert proxy.outage_started.wait(60), "the worker never reached the claim"
        # When ECS sends SIGTERM during that outage
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    report.add(trials=1, faults_injected=1)
    report.worst(took)
    # Then the worker gives up cleanly within the SIGTERM budget (20 s) with exit 75
    assert proc.returncode == 75, out[-3000:] + err[-2000:]
    assert took < SIGTERM_BUDGET_S, took
    [failed] = [e for e in events(out) if e.get("event") == "job_claim_failed"]
    assert "gave up claiming" in failed["error"] and "Traceback" not in out + err
    rows = [row for row in RunningIndex(dao.docs.client, STREAMS_TABLE).rows() if row["job_id"] == job_id]
    job = dao.docs.get(job_id)
    if not after_server:
        # nothing reached DynamoDB: the job is untouched (a stop before the claim, SPEC §4.4)
        assert status_of(job) is JobStatus.INITIALIZING and "lease_owner" not in job and rows == []
        report.notes.append(f"SIGTERM during the claim ({where}): nothing was written; the job is "
                            "left INITIALIZING, never claimed, as after any stop before the claim")
        return
    # The lease that landed is left to expire, and the row written before the claim finds it:
    assert job["status"] == "RUNNING" and [row["lease_owner"] for row in rows] == [job["lease_owner"]]
    ecs.stopped(arn, stop_code="EssentialContainerExited", reason="Essential container in task exited",
                container_reason="", exit_code=75,
                environment={"RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": USERNAME})
    wait_for(lambda: time.time() > int(job["lease_expires_at"]) + 1, timeout=20)
    run = run_sweeper(stack, ecs)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    after = dao.docs.get(job_id)
    if after["status"] == "RUNNING":
        report.add(stuck_jobs=1)
    assert after["status"] == "FAILED" and after["resumable"] is True, after
    assert "(exit code 75)" in after["error_message"]
    report.add(tasks_killed=1, tasks_swept=1)


def test_a_lost_reply_of_the_final_write_is_our_own_write(stack, dao, put_job, run_worker, report):
    job_id = put_job(job_item(add_and_nap_script(0.01), input_data={"a": 1, "b": 2}))
    with FaultProxy(stack.dynamodb_port, lose_first_reply_of=is_final_write) as proxy:
        run = run_worker(job_id, AWS_ENDPOINT_URL_DYNAMODB=proxy.url)
    report.add(trials=1, faults_injected=proxy.counts.lost_replies)
    assert proxy.counts.lost_replies == 1
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert dao.docs.get(job_id)["status"] == "SUCCEEDED"


def is_final_or_chunk_write(body: bytes) -> bool:
    """A final write (:func:`is_final_write`) or the write that marks a chunk of a shared run done."""
    if is_final_write(body):
        return True
    try:
        request = json.loads(body)
    except ValueError:
        return False
    names = (request.get("ExpressionAttributeNames") or {}) if isinstance(request, dict) else {}
    return "chunks_done" in names.values() and " ADD " in f" {request.get('UpdateExpression', '')}"


@pytest.mark.parametrize(("failing", "codes", "status"),
                         [(False, [0, 0], "SUCCEEDED"), (True, [0, 1], "FAILED")])
def test_shared_run_whose_chunk_and_final_write_replies_are_lost_exit_0_or_1_not_3(
        stack, dao, put_job, start_worker, report, failing, codes, status):
    # Given a collection of three chunks run by two tasks, the first reply of every chunk's done
    # write and of the final status write lost (botocore retries; the retry's condition fails)
    owner = new_owner()
    make = (lambda i: {"n": "x" if i % 3 == 0 else i}) if failing else (lambda i: {"n": i})
    seed_collection(dao, owner, 1200, make=make)
    job_id = put_job(job_item(tag_script(), collection_owner=owner, tolerated_failure_percent=10))
    with FaultProxy(stack.dynamodb_port, lose_first_reply_of=is_final_or_chunk_write) as proxy:
        procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", AWS_ENDPOINT_URL_DYNAMODB=proxy.url)
                 for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
    report.add(trials=1, faults_injected=proxy.counts.lost_replies)
    # Then each task recognises its own writes: the first to leave exits 0, the last the job's code
    assert sorted(p.returncode for p in procs) == codes, [o[0][-1500:] + o[1][-1500:] for o in outs]
    assert proxy.counts.lost_replies >= 4  # three chunks done and the final status
    finals = [line for out, _ in outs for line in out.splitlines() if '"job_finished"' in line]
    assert len(finals) == 1  # exactly one task recorded the job
    job = dao.docs.get(job_id)
    assert job["status"] == status and job["chunks_done"] == job["chunks_total"] == 3
    # no chunk's counts were added twice
    assert job["success_count"] + job["error_count"] == 1200
