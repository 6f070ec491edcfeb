"""Runs over many items shared by any number of tasks (SPEC §8.5): one plan, chunks claimed with
conditional writes, each item exactly once, one final status, tasks joining and leaving."""

from __future__ import annotations

import collections
import json
import signal
import time
from typing import Any

from tests.support.collections import nap_script, new_owner, receipts, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, job_item
from tests.support.waiting import wait_for


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"



def once_each(dao: Any, job_id: str, ids: list[str]) -> collections.Counter[str]:
    counts = collections.Counter(r["object_id"] for r in receipts(dao, run_all(job_id)) if r["success"])
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    return counts


def test_three_tasks_share_the_chunks_each_item_exactly_once(dao, put_job, start_worker):
    owner = new_owner()
    ids = seed_collection(dao, owner, 1600)  # 4 chunks of 500, the last one 100
    job_id = put_job(job_item(nap_script(0.002), collection_owner=owner))
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=8) for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[0][-1500:] + o[1][-1500:] for o in outs]
    finals = [line for out, _ in outs for line in out.splitlines() if '"job_finished"' in line]
    assert len(finals) == 1  # exactly one task wrote the final status
    plans = [line for out, _ in outs for line in out.splitlines() if '"plan_written"' in line]
    assert len(plans) == 1  # the collection was read once, by one task
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and job["percent"] == 100
    assert (job["success_count"], job["error_count"], job["item_count"]) == (1600, 0, 1600)
    assert (job["chunks_total"], job["chunks_done"], job["plan"]["state"]) == (4, 4, "READY")
    assert job["tasks"] == {} and job["chunks"] == {}
    once_each(dao, job_id, ids)
    claimed = [line for out, _ in outs for line in out.splitlines() if '"chunk_claimed"' in line]
    assert len(claimed) == 4


def test_an_aws_batch_array_job_shares_the_chunks(dao, put_job, start_worker):
    """run-task.sh --batch 3: three children of one array job, each with AWS Batch's variables
    (AWS_BATCH_JOB_ARRAY_INDEX, AWS_BATCH_JOB_ID <id>:<index>), SHARD_COUNT=3 and no ECS metadata
    endpoint, run the same job: each item once, one final status, each child named by its Batch id."""
    owner = new_owner()
    ids = seed_collection(dao, owner, 1100)  # 3 chunks
    job_id = put_job(job_item(nap_script(0.002), collection_owner=owner))
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=8, SHARD_COUNT="3",
                          AWS_BATCH_JOB_ARRAY_INDEX=str(i), AWS_BATCH_JOB_ID=f"5e1f-batch:{i}")
             for i in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[0][-1500:] + o[1][-1500:] for o in outs]
    lines = [json.loads(line) for out, _ in outs for line in out.splitlines() if line.startswith("{")]
    assert len([e for e in lines if e.get("event") == "job_finished"]) == 1
    claimed = [e for e in lines if e.get("event") == "job_claimed"]
    assert sorted(e["batch_job_id"] for e in claimed) == [f"5e1f-batch:{i}" for i in range(3)]
    assert all(e.get("task_arn") is None for e in claimed)  # no ECS task: nothing asked of ECS
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and job["success_count"] == 1100
    assert job["batch_job_id"] in {f"5e1f-batch:{i}" for i in range(3)}  # the child that started it
    assert "fargate_task_arn" not in job
    once_each(dao, job_id, ids)


def test_the_failure_threshold_is_judged_on_the_whole_job(dao, put_job, start_worker):
    owner = new_owner()
    seed_collection(dao, owner, 1200, make=lambda i: {"n": "x" if i % 3 == 0 else i})
    job_id = put_job(job_item(tag_script(), collection_owner=owner, tolerated_failure_percent=10))
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION") for _ in range(2)]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert codes == [0, 1]  # the first to leave exits 0; the one that finds every chunk done records FAILED
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["error_message"] == "400 of 1200 items failed"


def test_a_task_that_finds_no_free_chunk_leaves_at_once(dao, put_job, start_worker, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 300)  # one chunk, some 8 s of work
    job_id = put_job(job_item(nap_script(0.05), collection_owner=owner))
    first = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=2)
    wait_for(lambda: receipts(dao, run_all(job_id)), timeout=60)
    late = run_worker(job_id, RUN_MODE="RUN_COLLECTION", timeout=30)
    assert late.code == 0, late.stdout[-2000:]
    assert late.events("no_chunk_left")[0]["reason"] == "every chunk left is held by another live task"
    assert not late.events("chunk_claimed")
    assert first.wait(timeout=120) == 0
    assert dao.docs.get(job_id)["status"] == "SUCCEEDED"


def test_a_run_in_receipt_mode_batch_is_not_joined(dao, put_job, start_worker, run_worker):
    # batch mode keys receipts by one writer's timestamps: a second writer could overwrite them
    owner = new_owner()
    ids = seed_collection(dao, owner, 300)
    job_id = put_job(job_item(nap_script(0.05), collection_owner=owner, receipt_mode="batch"))
    first = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=2)
    wait_for(lambda: receipts(dao, run_all(job_id)), timeout=60)
    late = run_worker(job_id, RUN_MODE="RUN_COLLECTION", timeout=30)
    assert late.code == 3, late.stdout[-2000:]
    assert "receipt mode batch" in late.events("job_not_claimable")[0]["reason"]
    # RECEIPT_MODE=batch on the joining task refuses a job without its own mode as well
    job2 = put_job(job_item(nap_script(0.05), collection_owner=owner))
    second = start_worker(job2, RUN_MODE="RUN_COLLECTION", CONCURRENCY=2)
    wait_for(lambda: receipts(dao, run_all(job2)), timeout=60)
    assert run_worker(job2, RUN_MODE="RUN_COLLECTION", RECEIPT_MODE="batch", timeout=30).code == 3
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    assert dao.docs.get(job_id)["status"] == "SUCCEEDED"
    once_each(dao, job_id, ids)


def test_sharded_script_run_is_refused(put_job, run_worker):
    run = run_worker(put_job(job_item(tag_script(), input_data={"n": 1})), SHARD_INDEX=0, SHARD_COUNT=2)
    assert run.code == 1 and "SHARD_COUNT > 1 applies only" in run.job["error_message"]


def test_an_interrupted_task_gives_its_chunk_back_and_the_job_completes(dao, put_job, start_worker,
                                                                      run_worker):
    owner = new_owner()
    ids = seed_collection(dao, owner, 1000)
    job_id = put_job(job_item(nap_script(0.01), collection_owner=owner))
    first = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    second = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    wait_for(lambda: len(receipts(dao, run_all(job_id))) >= 100, timeout=60)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) in (0, 75)
    assert first.wait(timeout=180) == 0  # took the chunk given back (or never needed it) and finished
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and (job["success_count"], job["error_count"]) == (1000, 0)
    once_each(dao, job_id, ids)


def test_the_last_task_interrupted_leaves_the_job_resumable(dao, put_job, start_worker, run_worker):
    owner = new_owner()
    ids = seed_collection(dao, owner, 700)
    job_id = put_job(job_item(nap_script(0.02), collection_owner=owner))
    only = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    wait_for(lambda: len(receipts(dao, run_all(job_id))) >= 30, timeout=60)
    only.send_signal(signal.SIGTERM)
    assert only.wait(timeout=30) == 75
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["resumable"] is True
    assert all(c["st"] == "FREE" for c in job["chunks"].values())
    again = run_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=8)
    assert again.code == 0, again.stdout[-2000:]
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and (job["success_count"], job["error_count"]) == (700, 0)
    assert job["attempt"] == 2
    once_each(dao, job_id, ids)


def test_the_job_shows_chunks_tasks_rate_and_eta_while_it_runs(dao, put_job, start_worker):
    owner = new_owner()
    seed_collection(dao, owner, 2000)  # 4 chunks
    job_id = put_job(job_item(nap_script(0.02), collection_owner=owner))
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4) for _ in range(2)]
    seen: list[dict[str, Any]] = []
    while any(p.poll() is None for p in procs):
        job = dao.docs.get(job_id)
        if job and job.get("status") == "RUNNING" and "eta_seconds" in job:
            seen.append(job)
        time.sleep(0.2)
    assert [p.wait() for p in procs] == [0, 0]
    assert seen, "no progress with an ETA was seen"
    assert max(j["tasks_active"] for j in seen) == 2
    assert {j["chunks_total"] for j in seen} == {4}
    assert all(0 <= j["chunks_done"] <= 4 and j["items_per_s"] > 0 and j["eta_seconds"] >= 0 for j in seen)
    assert [j["percent"] for j in seen] == sorted(j["percent"] for j in seen)  # never goes back
    final = dao.docs.get(job_id)
    assert (final["chunks_done"], final["tasks_active"], final["eta_seconds"]) == (4, 0, 0)
    assert final["percent"] == 100
