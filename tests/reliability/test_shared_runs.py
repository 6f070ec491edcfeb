"""A run shared by several tasks (SPEC §8.5) when one of them dies: kill -9 of one of four tasks
mid-run. The others take over its chunk once its lease runs out; no item is lost, and the items run
again are at most the ones it had in flight."""

from __future__ import annotations

import collections
import time

from tests.support.collections import nap_script, new_owner, receipts, seed_collection
from tests.support.scripts import NAMESPACE, job_item

CONCURRENCY = 4


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"


def test_kill_9_of_one_of_four_tasks_the_others_finish_its_chunk(dao, put_job, start_worker, report):
    # Given a collection of 8 chunks run by four tasks with a short lease
    owner = new_owner()
    ids = seed_collection(dao, owner, 4000)
    job_id = put_job(job_item(nap_script(0.01), collection_owner=owner))
    procs = [start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=CONCURRENCY, LEASE_SECONDS=4)
             for _ in range(4)]
    deadline = time.monotonic() + 120
    while len(receipts(dao, run_all(job_id))) < 600:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # When one of them is killed mid-chunk (each task holds a chunk while items are left)
    held = {c["by"] for c in (dao.docs.get(job_id) or {}).get("chunks", {}).values()}
    victim = procs[1]
    victim.kill()
    victim.communicate()
    report.add(trials=1)  # recovered by the other tasks, not the sweeper: not a "killed / swept" row
    # Then the other three finish the job, one of them taking the dead task's chunk over
    outs = [p.communicate(timeout=240) for p in procs if p is not victim]
    codes = sorted(p.returncode for p in procs if p is not victim)
    assert codes == [0, 0, 0], [o[0][-1500:] + o[1][-1500:] for o in outs]
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and (job["success_count"], job["error_count"]) == (4000, 0)
    took_over = [line for out, _ in outs for line in out.splitlines()
                 if '"chunk_claimed"' in line and '"taken_over": true' in line]
    assert len(held) >= 4 and len(took_over) >= 1
    rows = receipts(dao, run_all(job_id))
    counts = collections.Counter(r["object_id"] for r in rows)
    lost = set(ids) - set(counts)
    reruns = sum(counts.values()) - len(ids)
    report.add(items_lost=len(lost), duplicates=reruns)
    assert not lost
    assert reruns <= CONCURRENCY  # at most the items the killed task had in flight
    assert job["tasks"] == {} or all(t["lease_expires_at"] < time.time() for t in job["tasks"].values())
