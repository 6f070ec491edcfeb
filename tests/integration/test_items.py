"""Runs over many items through ``python -m src.worker`` on the real local stack."""

from __future__ import annotations

import collections

from tests.support.collections import new_owner, receipts, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, job_item


def job_uuid(job_id: str) -> str:
    return job_id.rsplit("job.", 1)[1]


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_uuid(job_id)}"


def test_collection_of_1000_items_with_write_back_and_another_owner_untouched(dao, put_job, run_worker):
    # Given 1,000 items of one owner and 50 of another
    owner, other = new_owner(), new_owner()
    ids = seed_collection(dao, owner, 1000)
    others = seed_collection(dao, other, 50)
    job_id = put_job(job_item(tag_script(), collection_owner=owner, job_type="run_on_collection"))
    # When the worker runs the script over the collection
    run = run_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=8)
    # Then every item has exactly one successful receipt and its write-back
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    job = run.job
    assert job["status"] == "SUCCEEDED" and "outcome" not in job and "error_message" not in job
    counts = (job["success_count"], job["error_count"], job["item_count"], job["percent"])
    assert counts == (1000, 0, 1000, 100)
    rows = receipts(dao, run_all(job_id))
    counts = collections.Counter(r["object_id"] for r in rows)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    assert all(r["success"] for r in rows)
    sample = rows[0]
    assert sample["outputs"]["sum"]["ptype"] == "INTEGER"
    assert sample["attempt"] == 1 and sample["duration_ms"] >= 0
    docs = {i: dao.docs.get(i) for i in ids[::97]}
    assert all(d["status"] == "processed" and d["n_plus_one"] == d["n"] + 1 for d in docs.values())
    assert all("status" not in dao.docs.get(i) for i in others[::10])


def test_partial_failure_within_threshold_is_partial_success(dao, put_job, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 20, make=lambda i: {"n": "not a number" if i % 10 == 0 else i})
    job_id = put_job(job_item(tag_script(), collection_owner=owner, tolerated_failure_percent=20))
    run = run_worker(job_id, RUN_MODE="RUN_COLLECTION")
    assert run.code == 0, run.stdout[-2000:]
    job = run.job
    assert job["status"] == "SUCCEEDED" and job["outcome"] == "PARTIAL"
    assert job["error_message"] == "2 of 20 items failed"
    assert (job["success_count"], job["error_count"]) == (18, 2)
    failed = [r for r in receipts(dao, run_all(job_id)) if not r["success"]]
    assert len(failed) == 2
    assert all("expects" in r["error_message"] or "number" in r["error_message"] for r in failed)


def test_failures_above_threshold_fail_the_job(dao, put_job, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 10, make=lambda i: {"n": "x" if i < 3 else i})
    run = run_worker(put_job(job_item(tag_script(), collection_owner=owner)), RUN_MODE="RUN_COLLECTION",
                     TOLERATED_FAILURE_PERCENT=10)
    assert run.code == 1 and run.job["status"] == "FAILED"
    assert run.job["error_message"] == "3 of 10 items failed"


def test_all_items_failing_fails_the_job(dao, put_job, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 5, make=lambda i: {"n": "x"})
    run = run_worker(put_job(job_item(tag_script(), collection_owner=owner)), RUN_MODE="RUN_COLLECTION")
    assert run.code == 1 and run.job["error_message"] == "5 of 5 items failed"


def test_empty_collection_succeeds_with_no_items_found(put_job, run_worker):
    run = run_worker(put_job(job_item(tag_script(), collection_owner=new_owner())), RUN_MODE="RUN_COLLECTION")
    assert run.code == 0 and run.job["status"] == "SUCCEEDED" and run.job["error_message"] == "No items found"


def test_collection_outside_namespace_is_refused(dao, put_job, run_worker):
    foreign = new_owner("plus_example_com/bob@example.com/")
    ids = seed_collection(dao, foreign, 3)
    run = run_worker(put_job(job_item(tag_script(), collection_owner=foreign)), RUN_MODE="RUN_COLLECTION")
    assert run.code == 1 and "outside your namespace" in run.job["error_message"]
    assert all("status" not in dao.docs.get(i) for i in ids)


def test_run_job_dispatches_on_job_type_and_refuses_unknown(dao, put_job, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 3)
    run = run_worker(put_job(job_item(tag_script(), collection_owner=owner, job_type="run_on_collection")),
                     RUN_MODE="RUN_JOB")
    assert run.code == 0 and run.job["success_count"] == 3
    bad = run_worker(put_job(job_item(tag_script(), job_type="run_on_moon")), RUN_MODE="RUN_JOB")
    assert bad.code == 1 and "unknown job_type 'run_on_moon'" in bad.job["error_message"]


def test_stream_run_processes_rows_oldest_first(dao, put_job, run_worker):
    stream_id = f"{NAMESPACE}stream-input-{job_uuid(put_job(job_item()))}"
    for n in range(12):
        dao.streams.append(stream_id, {"n": n})
    job_id = put_job(job_item(tag_script(), stream_id=stream_id))
    run = run_worker(job_id, RUN_MODE="RUN_STREAM", CONCURRENCY=1)
    assert run.code == 0, run.stdout[-2000:]
    rows = receipts(dao, run_all(job_id))
    assert [r["outputs"]["sum"]["ival"] for r in rows] == [str(n + 1) for n in range(12)]
    assert all(r["object_id"].startswith(stream_id + "@") for r in rows)


def test_files_run_over_a_prefix_and_over_file_keys(user_storage, put_job, run_worker, dao):
    from tests.support.scripts import action, script

    prefix = f"{NAMESPACE}files-{job_uuid(put_job(job_item()))}/"
    for name in ("a.txt", "b.txt", "c.txt"):
        user_storage.put_bytes(prefix + name, name.encode())
    s = script([action("read", "sys.blob.get_text")],
               ["mainInput:key -> read:key", "read:text -> mainOutput:text",
                "mainInput:filename -> mainOutput:name"])
    job_id = put_job(job_item(s, prefix=prefix))
    run = run_worker(job_id, RUN_MODE="RUN_FILES")
    assert run.code == 0, run.stdout[-2000:]
    rows = receipts(dao, run_all(job_id))
    assert sorted(r["outputs"]["text"]["sval"] for r in rows) == ["a.txt", "b.txt", "c.txt"]
    job_id = put_job(job_item(s, file_keys=[prefix + "b.txt"], job_type="run_on_files"))
    run = run_worker(job_id, RUN_MODE="RUN_JOB")
    assert run.code == 0 and run.job["item_count"] == 1
    bad = run_worker(put_job(job_item(s, prefix="plus_example_com/bob@example.com/")), RUN_MODE="RUN_FILES")
    assert bad.code == 1 and "outside your namespace" in bad.job["error_message"]


def test_emf_metrics_lines_when_enabled(dao, put_job, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 5, make=lambda i: {"n": "x" if i == 0 else i})
    run = run_worker(put_job(job_item(tag_script(), collection_owner=owner)), RUN_MODE="RUN_COLLECTION",
                     METRICS="emf")
    emf = [line for line in run.lines if "_aws" in line]
    items = [line for line in emf if "ItemDuration" in line]
    assert len(items) == 5 and sum(line["ItemsFailed"] for line in items) == 1
    assert items[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PlusWorker"
    assert items[0]["RunMode"] == "RUN_COLLECTION"
    finished = [line for line in emf if "JobDuration" in line]
    assert len(finished) == 1 and finished[0]["JobItems"] == 5 and finished[0]["Status"] == "SUCCEEDED"
    plain = run_worker(put_job(job_item(tag_script(), collection_owner=owner)), RUN_MODE="RUN_COLLECTION")
    assert not [line for line in plain.lines if "_aws" in line]


def test_write_back_of_a_receipt_and_of_protected_attributes(dao, put_job, run_worker):
    from tests.support.scripts import NT, action, node, script

    owner = new_owner()
    ids = seed_collection(dao, owner, 4, make=lambda i: {"n": i, "guard": i})
    s = script([action("inc", "sys.math.add", b=1), node("uv", NT.UPDATE_VALUES)],
               ["mainInput:n -> inc:a", "inc:receipt -> uv:last_receipt", "inc:sum -> uv:total"])
    run = run_worker(put_job(job_item(s, collection_owner=owner)), RUN_MODE="RUN_COLLECTION")
    assert run.code == 0, run.stdout[-2000:]
    doc = dao.docs.get(ids[2])
    assert doc["total"] == 3 and doc["last_receipt"]["success"] is True  # the receipt's JSON form
    assert doc["last_receipt"]["outputs"]["sum"]["ival"] == "3"
    bad = script([action("inc", "sys.math.add", b=1), node("uv", NT.UPDATE_VALUES)],
                 ["mainInput:n -> inc:a", "inc:sum -> uv:owner"])
    run = run_worker(put_job(job_item(bad, collection_owner=owner)), RUN_MODE="RUN_COLLECTION")
    assert run.code == 1 and run.job["error_message"] == "4 of 4 items failed"
    job_uuid = run.job["object_id"].rsplit("job.", 1)[1]
    rows = receipts(dao, f"{NAMESPACE}stream-run-all.{job_uuid}")
    assert all("UPDATE_VALUES cannot change owner" in r["error_message"] for r in rows)
    assert all(dao.docs.get(i)["owner"] == owner for i in ids)
