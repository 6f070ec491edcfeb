"""Redrive of the failed items of a finished run (issue 17 item 3) on the real local stack:
``feaas.launch.redrive_job`` writes the new job, ``python -m src.worker`` runs it."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from feaas.dao import Update
from feaas.jobs.redrive import RedriveRefused
from feaas.launch import redrive_job
from tests.conftest import BUCKET, ROOT, STREAMS_TABLE, TABLE
from tests.support.collections import new_owner, receipts, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, USERNAME, action, job_item, script


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"


def latest_failed(dao: Any, job_id: str) -> set[str]:
    latest = {r["object_id"]: r["success"] for r in receipts(dao, run_all(job_id))}
    return {key for key, ok in latest.items() if not ok}


def test_redrive_of_10000_items_with_1_percent_failed_runs_exactly_the_100(dao, put_job, run_worker):
    # Given a finished run over 10,000 documents of which 1 % failed (tolerated: PARTIAL success)
    owner = new_owner()
    ids = seed_collection(dao, owner, 10_000, make=lambda i: {"n": "broken" if i % 100 == 7 else i})
    job_id = put_job(job_item(tag_script(), collection_owner=owner, job_type="run_on_collection",
                              tolerated_failure_percent=5, input_data={"note": "kept"}))
    first = run_worker(job_id, timeout=600, RUN_MODE="RUN_JOB", CONCURRENCY=16)
    assert first.code == 0, first.stdout[-3000:]
    assert (first.job["outcome"], first.job["error_count"]) == ("PARTIAL", 100)
    failed = latest_failed(dao, job_id)
    assert failed == {ids[i] for i in range(7, 10_000, 100)}
    # and the data behind the failures is then fixed
    for key in failed:
        dao.docs.update(key, Update(set={"n": 1}))
    # When the job is redriven and the new job runs
    new_id = redrive_job(dao, job_id, USERNAME)
    second = run_worker(new_id, timeout=600, RUN_MODE="RUN_JOB", CONCURRENCY=16)
    # Then exactly the 100 failed items ran again, once each, and succeeded
    assert second.code == 0, second.stdout[-3000:]
    rows = receipts(dao, run_all(new_id))
    counts = collections.Counter(r["object_id"] for r in rows)
    assert set(counts) == failed and set(counts.values()) == {1} and all(r["success"] for r in rows)
    job = second.job
    counted = (job["status"], job["success_count"], job["error_count"], job["item_count"])
    assert counted == ("SUCCEEDED", 100, 0, 100)
    assert all(dao.docs.get(k)["n_plus_one"] == 2 for k in failed)
    # And the two jobs are linked both ways, with the same script and settings
    old = dao.docs.get(job_id)
    assert old["redriven_by"] == new_id and job["parent_job_id"] == job_id
    assert job["script"] == old["script"] and job["input_data"] == {"note": "kept"}
    assert job["job_type"] == "run_on_collection" and job["collection_owner"] == owner
    assert job["tolerated_failure_percent"] == 5 and job["owner"] == old["owner"]
    assert job["item_source"] == {"job_type": "run_on_collection", "collection_owner": owner}
    listed = json.loads(dao.blobs.get_bytes(job["item_keys_object"]))
    assert listed["parent_job_id"] == job_id and sorted(listed["keys"]) == sorted(failed)
    assert job["item_keys_object"].startswith(f"{NAMESPACE}.plus-worker/jobs/{new_id.rsplit('job.', 1)[1]}/")
    # A redriven job is not redriven twice; its own redrive has nothing left to run
    with pytest.raises(RedriveRefused, match="already redriven by"):
        redrive_job(dao, job_id, USERNAME)
    with pytest.raises(RedriveRefused, match="no failed items"):
        redrive_job(dao, new_id, USERNAME)


def test_redrive_of_a_stream_run_and_of_a_redrive(dao, put_job, run_worker):
    stream_id = f"{NAMESPACE}stream-redrive-{new_owner().rsplit('-', 1)[1]}"
    for n in range(10):
        dao.streams.append(stream_id, {"n": "x" if n in (2, 5) else n})
    job_id = put_job(job_item(tag_script(), stream_id=stream_id, tolerated_failure_percent=50))
    assert run_worker(job_id, RUN_MODE="RUN_STREAM").code == 0  # launched without a job_type
    failed = latest_failed(dao, job_id)
    assert len(failed) == 2
    new_id = redrive_job(dao, job_id, USERNAME)
    run = run_worker(new_id, RUN_MODE="RUN_JOB")
    # the rows are what they were: the same two fail again, and only they ran
    assert run.code == 1 and run.job["error_message"] == "2 of 2 items failed"
    assert {r["object_id"] for r in receipts(dao, run_all(new_id))} == failed
    assert run.job["job_type"] == "run_on_stream" and run.job["stream_id"] == stream_id
    # a redrive of the redrive runs them once more
    again = redrive_job(dao, new_id, USERNAME)
    assert run_worker(again, RUN_MODE="RUN_JOB").code == 1
    assert len(receipts(dao, run_all(again))) == 2
    assert dao.docs.get(again)["parent_job_id"] == new_id and dao.docs.get(new_id)["redriven_by"] == again


def test_redrive_of_a_files_run(dao, user_storage, put_job, run_worker):
    prefix = f"{NAMESPACE}redrive-files-{new_owner().rsplit('-', 1)[1]}/"
    keys = [f"{prefix}{name}.txt" for name in "abcde"]
    for key in keys[:3]:
        user_storage.put_bytes(key, b"here")
    s = script([action("read", "sys.blob.get_text")],
               ["mainInput:key -> read:key", "read:text -> mainOutput:text"])
    job_id = put_job(job_item(s, file_keys=keys, job_type="run_on_files", tolerated_failure_percent=50))
    assert run_worker(job_id, RUN_MODE="RUN_JOB").code == 0
    assert latest_failed(dao, job_id) == set(keys[3:])
    for key in keys[3:]:
        user_storage.put_bytes(key, b"now here")
    new_id = redrive_job(dao, job_id, USERNAME)
    run = run_worker(new_id, RUN_MODE="RUN_JOB")
    assert run.code == 0 and run.job["success_count"] == 2 and run.job["item_count"] == 2
    rows = receipts(dao, run_all(new_id))
    assert sorted(r["object_id"] for r in rows) == keys[3:] and all(r["success"] for r in rows)


def launch_redrive(job_id: str, username: str = USERNAME) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DYNAMO_TABLE": TABLE, "DYNAMO_STREAMS_TABLE": STREAMS_TABLE,
           "PRIMARY_BUCKET": BUCKET, "REGION": "us-east-1", "USERNAME": username}
    return subprocess.run([sys.executable, "-m", "feaas.launch", "redrive", job_id], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ({"status": "RUNNING"}, "has not finished (status RUNNING)"),
        ({"status": "INITIALIZING"}, "has not finished (status INITIALIZING)"),
        ({"status": "FAILED", "resumable": True}, "can be resumed"),
        ({"status": "SUCCEEDED"}, "no failed items"),
        ({"status": "SUCCEEDED", "job_type": "singleton"}, "not a run over many items"),
    ],
)
def test_refused_redrive_writes_nothing(dao, put_job, state, why):
    owner = new_owner()
    fields = {"job_type": "run_on_collection", **state}
    job_id = put_job(job_item(tag_script(), collection_owner=owner, **fields))
    dao.streams.append(run_all(job_id), {"object_id": f"{owner}.a", "success": True})
    before, jobs = dao.docs.get(job_id), dao.docs.count_owner(f"{NAMESPACE}job")
    done = launch_redrive(job_id)
    assert done.returncode == 64 and why in done.stderr and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert dao.docs.get(job_id) == before and dao.docs.count_owner(f"{NAMESPACE}job") == jobs


def test_redrive_of_another_users_job_is_refused(dao, put_job):
    owner = new_owner()
    job_id = put_job(job_item(tag_script(), collection_owner=owner, job_type="run_on_collection",
                              status="FAILED"))
    dao.streams.append(run_all(job_id), {"object_id": f"{owner}.a", "success": False})
    before = dao.docs.get(job_id)
    done = launch_redrive(job_id, username="mallory@example.com")
    assert done.returncode == 64 and "cannot be redriven by mallory@example.com" in done.stderr
    assert "username mismatch" in done.stderr and dao.docs.get(job_id) == before
    # the owner may, and show-job shows the link both ways
    new_id = launch_redrive(job_id).stdout.strip()
    assert dao.docs.get(new_id)["parent_job_id"] == job_id
    env = {**os.environ, "DYNAMO_TABLE": TABLE, "REGION": "us-east-1"}
    for shown, link, other in ((job_id, "redriven_by", new_id), (new_id, "parent_job_id", job_id)):
        out = subprocess.run([sys.executable, "-m", "feaas.launch", "show-job", shown], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        assert json.loads(out)[link] == other
