"""Interruption, crash takeover and resume of many-item runs (SPEC §4.4, §5.3, §8.5)."""

from __future__ import annotations

import collections
import signal
import time

from tests.support.collections import nap_script, new_owner, receipts, seed_collection
from tests.support.scripts import NAMESPACE, job_item
from tests.support.waiting import wait_for


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"



def test_sigterm_mid_run_then_relaunch_loses_nothing(dao, put_job, start_worker, run_worker):
    # Given a collection run in progress
    owner = new_owner()
    ids = seed_collection(dao, owner, 300)
    job_id = put_job(job_item(nap_script(0.02), collection_owner=owner))
    proc = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    wait_for(lambda: len(receipts(dao, run_all(job_id))) >= 40)
    # When it gets SIGTERM
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    recorded_in = time.monotonic() - sent
    # Then it records FAILED + resumable and exits 75 within 20 s
    assert proc.returncode == 75, out[-2000:] + err[-2000:]
    assert recorded_in < 20
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["resumable"] is True and "interrupted" in job["error_message"]
    first = receipts(dao, run_all(job_id))
    # counts join the job's per done chunk (SPEC §8.5): the one chunk of 300 was given back unfinished
    assert 0 < len(first) < 300 and job["success_count"] == 0
    assert job["chunks"]["c0"]["st"] == "FREE"
    # When relaunched with the same JOB_ID
    again = run_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    # Then it completes: every item has a successful receipt, those done before are not redone
    assert again.code == 0, again.stdout[-2000:]
    final = again.job
    assert final["status"] == "SUCCEEDED" and final["attempt"] == 2 and "resumable" not in final
    assert (final["success_count"], final["error_count"], final["item_count"]) == (300, 0, 300)
    rows = receipts(dao, run_all(job_id))
    counts = collections.Counter(r["object_id"] for r in rows)
    assert set(counts) == set(ids)  # nothing lost
    assert sum(counts.values()) - len(ids) == 0  # interrupted items left no receipt; done ones not rerun
    assert {r["attempt"] for r in rows} == {1, 2}


def test_kill_9_then_takeover_after_lease_expiry(dao, put_job, start_worker, run_worker):
    owner = new_owner()
    ids = seed_collection(dao, owner, 200)
    job_id = put_job(job_item(nap_script(0.02), collection_owner=owner))
    proc = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4, LEASE_SECONDS=3)
    wait_for(lambda: len(receipts(dao, run_all(job_id))) >= 30)
    proc.kill()
    proc.communicate()
    assert dao.docs.get(job_id)["status"] == "RUNNING"  # a crashed task leaves its lease behind
    # a task started before the lease expires joins, finds the only chunk held, and leaves at once
    early = run_worker(job_id, RUN_MODE="RUN_COLLECTION")
    assert early.code == 0 and early.events("no_chunk_left"), early.stdout[-2000:]
    assert early.job["status"] == "RUNNING" and not early.events("chunk_claimed")
    time.sleep(3.5)
    late = run_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    assert late.code == 0, late.stdout[-2000:]
    rows = receipts(dao, run_all(job_id))
    counts = collections.Counter(r["object_id"] for r in rows)
    assert set(counts) == set(ids)
    duplicates = sum(counts.values()) - len(ids)
    assert duplicates <= 4  # at most the items in flight when it died (CONCURRENCY)
    assert late.job["success_count"] == 200 and late.job["attempt"] == 1  # joins count no attempt
    assert late.events("chunk_claimed")[0]["taken_over"] is True
