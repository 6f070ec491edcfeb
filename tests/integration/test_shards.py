"""Several tasks on one collection (SPEC §5.4): each item exactly once, one final status."""

from __future__ import annotations

import collections

from tests.support.collections import nap_script, new_owner, receipts, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, job_item


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"


def test_three_shards_in_parallel_each_item_exactly_once(dao, put_job, start_worker):
    owner = new_owner()
    ids = seed_collection(dao, owner, 300)
    job_id = put_job(job_item(nap_script(0.005), collection_owner=owner))
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", SHARD_INDEX=i, SHARD_COUNT=3, CONCURRENCY=4)
             for i in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[0][-1500:] + o[1][-1500:] for o in outs]
    finals = [line for out, _ in outs for line in out.splitlines() if '"job_finished"' in line]
    assert len(finals) == 1  # exactly one shard wrote the final status
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and job["percent"] == 100
    assert (job["success_count"], job["error_count"], job["item_count"]) == (300, 0, 300)
    assert {k: v["state"] for k, v in job["shards"].items()} == {"s0": "DONE", "s1": "DONE", "s2": "DONE"}
    counts = collections.Counter(r["object_id"] for r in receipts(dao, run_all(job_id)))
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    per_shard = [job["shards"][f"s{i}"]["success_count"] for i in range(3)]
    assert sum(per_shard) == 300 and all(n > 50 for n in per_shard)


def test_shards_judge_the_failure_threshold_on_the_whole_job(dao, put_job, start_worker):
    owner = new_owner()
    seed_collection(dao, owner, 60, make=lambda i: {"n": "x" if i % 3 == 0 else i})
    job_id = put_job(job_item(tag_script(), collection_owner=owner, tolerated_failure_percent=10))
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", SHARD_INDEX=i, SHARD_COUNT=2) for i in range(2)]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert codes == [0, 1]  # the shard that finishes first exits 0, the last one records FAILED
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["error_message"] == "20 of 60 items failed"


def test_a_sharded_script_run_is_refused(put_job, run_worker):
    run = run_worker(put_job(job_item(tag_script(), input_data={"n": 1})), SHARD_INDEX=0, SHARD_COUNT=2)
    assert run.code == 1 and "SHARD_COUNT > 1 applies only" in run.job["error_message"]


def test_an_interrupted_shard_resumes_and_the_job_completes(dao, put_job, start_worker, run_worker):
    import signal
    import time

    owner = new_owner()
    ids = seed_collection(dao, owner, 200)
    job_id = put_job(job_item(nap_script(0.02), collection_owner=owner))
    first = start_worker(job_id, RUN_MODE="RUN_COLLECTION", SHARD_INDEX=0, SHARD_COUNT=2, CONCURRENCY=2)
    second = start_worker(job_id, RUN_MODE="RUN_COLLECTION", SHARD_INDEX=1, SHARD_COUNT=2, CONCURRENCY=2)
    deadline = time.monotonic() + 30
    while len(receipts(dao, run_all(job_id))) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 75
    assert first.wait(timeout=120) == 1  # finished its share last: records the job FAILED (resumable)
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["resumable"] is True
    assert job["shards"]["s1"]["state"] == "INTERRUPTED"
    again = run_worker(job_id, RUN_MODE="RUN_COLLECTION", SHARD_INDEX=1, SHARD_COUNT=2)
    assert again.code == 0, again.stdout[-2000:]
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and (job["success_count"], job["error_count"]) == (200, 0)
    counts = collections.Counter(r["object_id"] for r in receipts(dao, run_all(job_id)))
    assert set(counts) == set(ids) and set(counts.values()) == {1}
