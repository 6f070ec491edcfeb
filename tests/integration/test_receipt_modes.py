"""The cheaper receipt mode (``RECEIPT_MODE=batch`` / the job's ``receipt_mode``) on the real local stack:
exactly one receipt row per item per attempt, whether a batch is written again, a reply is lost, or the
task is interrupted and relaunched; and no row overwrites another."""

from __future__ import annotations

import collections
import signal
import time

from feaas.dao import make_clients
from feaas.dao.batch import BatchWriter, ItemWrite
from feaas.dao.codec import to_dynamo
from feaas.dao.docs import Documents
from feaas.dao.streams import Streams
from tests.conftest import STREAMS_TABLE, TABLE
from tests.support import localstack
from tests.support.collections import nap_script, new_owner, receipts, seed_collection, tag_script
from tests.support.faultproxy import FaultProxy
from tests.support.scripts import NAMESPACE, job_item


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"


def per_item(rows: list[dict]) -> collections.Counter[str]:
    return collections.Counter(r["object_id"] for r in rows)


def writes(stream_id: str, ids: list[str]) -> list[ItemWrite]:
    return [ItemWrite(stream_id, {"object_id": i, "success": True, "error_message": "", "attempt": 1},
                      i, {"status": "processed"}) for i in ids]


def test_batch_mode_run_writes_one_receipt_per_item_with_writer_keys(dao, put_job, run_worker):
    # Given a collection and a job asking for the batch receipt mode
    owner = new_owner()
    ids = seed_collection(dao, owner, 260)
    job_id = put_job(job_item(tag_script(), collection_owner=owner, receipt_mode="batch"))
    # When the worker runs it
    run = run_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    # Then every item has one successful receipt, keyed by odd milliseconds (attempt 1), and its write-back
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.job["status"] == "SUCCEEDED" and run.job["success_count"] == 260
    rows = receipts(dao, run_all(job_id))
    assert per_item(rows) == collections.Counter(ids)
    assert all(r["success"] and r["attempt"] == 1 for r in rows)
    assert {r["timestamp"] % 2 for r in rows} == {1}
    assert all(dao.docs.get(i)["n_plus_one"] == dao.docs.get(i)["n"] + 1 for i in ids[::37])
    assert any(e.get("receipt_mode") == "batch" for e in run.events("items_started"))


def test_setting_selects_batch_mode_and_job_field_overrides_it(dao, put_job, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 30)
    by_setting = put_job(job_item(tag_script(), collection_owner=owner))
    run = run_worker(by_setting, RUN_MODE="RUN_COLLECTION", RECEIPT_MODE="batch")
    assert [e["receipt_mode"] for e in run.events("items_started")] == ["batch"]
    by_job = put_job(job_item(tag_script(), collection_owner=owner, receipt_mode="transaction"))
    run = run_worker(by_job, RUN_MODE="RUN_COLLECTION", RECEIPT_MODE="batch")
    assert [e["receipt_mode"] for e in run.events("items_started")] == ["transaction"]
    assert run.job["success_count"] == 30


def test_unknown_receipt_mode_is_a_recorded_failure(dao, put_job, run_worker):
    owner = new_owner()
    seed_collection(dao, owner, 3)
    job_id = put_job(job_item(tag_script(), collection_owner=owner, receipt_mode="cheap"))
    run = run_worker(job_id, RUN_MODE="RUN_COLLECTION")
    assert run.job["status"] == "FAILED"
    assert "receipt_mode must be one of transaction, batch" in run.job["error_message"]
    assert "Traceback" not in run.stdout + run.stderr


def test_a_batch_written_again_leaves_one_row_per_item(dao):
    # Given receipts written once in batch mode
    stream_id = f"{NAMESPACE}stream-batch-retry.{time.time_ns()}"
    owner = new_owner()
    ids = seed_collection(dao, owner, 60)
    writer = BatchWriter(dao.streams, dao.docs, mode="batch", attempt=2)
    batch = writes(stream_id, ids)
    assert writer.write(batch) == [None] * 60
    # When the same batch is written again (a retry after an error whose write had landed)
    assert writer.write(batch) == [None] * 60
    # Then each item still has exactly one row, under this writer's keys (one shard, attempt 2: even)
    rows = receipts(dao, stream_id)
    assert per_item(rows) == collections.Counter(ids)
    assert {r["timestamp"] % 2 for r in rows} == {0}


def test_other_attempts_and_shards_never_share_a_key(dao):
    # Writers that may write one stream at once — two shards, each with its attempt and the next —
    # whose clocks give the same milliseconds
    stream_id = f"{NAMESPACE}stream-batch-writers.{time.time_ns()}"
    ids = [f"{new_owner()}.x{i}" for i in range(40)]
    ahead = int(time.time() * 1000) + 3_600_000  # far above the real clock: only the writers' keys differ
    for shard, attempt in ((0, 1), (0, 2), (1, 1), (1, 2)):
        writer = BatchWriter(Streams(dao.streams.client, STREAMS_TABLE), dao.docs, mode="batch", shard=shard,
                             shard_count=2, attempt=attempt)
        writer.streams._last_ms = ahead
        writer.write([ItemWrite(stream_id, {"object_id": i, "success": True}) for i in ids])
    # Then no row replaced another
    assert per_item(receipts(dao, stream_id)) == collections.Counter(ids * 4)


def test_a_missing_item_fails_only_its_own_receipt(dao):
    stream_id = f"{NAMESPACE}stream-batch-missing.{time.time_ns()}"
    ids = seed_collection(dao, new_owner(), 5)
    batch = writes(stream_id, [*ids[:2], f"{NAMESPACE}gone.item", *ids[2:]])
    problems = BatchWriter(dao.streams, dao.docs, mode="batch").write(batch)
    assert [p is None for p in problems] == [True, True, False, True, True, True]
    failed = [r for r in receipts(dao, stream_id) if not r["success"]]
    assert [r["object_id"] for r in failed] == [f"{NAMESPACE}gone.item"]
    assert "no longer exists" in failed[0]["error_message"]


def test_lost_replies_do_not_duplicate_receipts(stack, dao, monkeypatch):
    # Given a proxy that lets DynamoDB handle a request and then cuts the reply (botocore retries it)
    stream_id = f"{NAMESPACE}stream-batch-lost.{time.time_ns()}"
    ids = seed_collection(dao, new_owner(), 400)
    with FaultProxy(stack.dynamodb_port, reset_after=0.3, seed=7) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
        client = make_clients(localstack.DEFAULT_REGION).dynamodb
        docs = Documents(client, TABLE, "object_id", "ownerIndex")
        writer = BatchWriter(Streams(client, STREAMS_TABLE), docs, mode="batch")
        batch = writes(stream_id, ids)
        for start in range(0, len(batch), 50):
            assert writer.write(batch[start:start + 50]) == [None] * 50
    assert proxy.counts.resets_after >= 5
    # Then every item has exactly one receipt
    assert per_item(receipts(dao, stream_id)) == collections.Counter(ids)


def test_interrupted_then_relaunched_one_row_per_item_per_attempt(dao, put_job, start_worker, run_worker):
    owner = new_owner()
    ids = seed_collection(dao, owner, 300)
    job_id = put_job(job_item(nap_script(0.02), collection_owner=owner, receipt_mode="batch"))
    proc = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    deadline = time.monotonic() + 60
    while len(receipts(dao, run_all(job_id))) < 40:
        assert time.monotonic() < deadline, "no receipts within 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 75, out[-2000:] + err[-2000:]
    again = run_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    assert again.code == 0, again.stdout[-2000:]
    rows = receipts(dao, run_all(job_id))
    by_attempt = collections.Counter((r["object_id"], r["attempt"]) for r in rows)
    assert set(by_attempt.values()) == {1}  # one row per item per attempt
    assert per_item(rows) == collections.Counter(ids)  # items done in attempt 1 were not rerun
    assert {(r["attempt"], r["timestamp"] % 2) for r in rows} == {(1, 1), (2, 0)}


def counting_writer(lane: tuple[int, int] = (1, 0)) -> tuple[BatchWriter, collections.Counter[str]]:
    """A transaction-mode writer on a client of its own whose DynamoDB requests are counted."""
    client = make_clients(localstack.DEFAULT_REGION).dynamodb
    calls: collections.Counter[str] = collections.Counter()
    client.meta.events.register("before-call.dynamodb.*",
                                lambda model, **_: calls.update([model.name]))
    writer = BatchWriter(Streams(client, STREAMS_TABLE), Documents(client, TABLE, "object_id", "ownerIndex"),
                         lane=lambda: lane)
    return writer, calls


def test_a_transaction_whose_timestamps_were_taken_is_stamped_again_not_split(dao):
    # Given another writer's rows at the very milliseconds this writer is about to take
    stream_id = f"{NAMESPACE}stream-collide.{time.time_ns()}"
    ids = seed_collection(dao, new_owner(), 50)
    writer, calls = counting_writer()
    ahead = int(time.time() * 1000) + 3_600_000
    writer.streams._last_ms = ahead
    theirs = [{"stream_id": stream_id, "timestamp": ahead + k, "object_id": "theirs", "success": True}
              for k in (1, 7, 30)]
    for row in theirs:
        dao.docs.client.put_item(TableName=STREAMS_TABLE, Item=to_dynamo(row))
    # When it writes 50 receipts with their write-backs
    assert writer.write(writes(stream_id, ids)) == [None] * 50
    # Then the refused transaction is sent again with new timestamps, not split into 100 requests,
    # and no row replaced another
    assert calls["TransactWriteItems"] == 2 and calls["PutItem"] == calls["UpdateItem"] == 0
    rows = receipts(dao, stream_id)
    assert per_item(rows) == collections.Counter([*ids, "theirs", "theirs", "theirs"])
    assert all(dao.docs.get(i)["status"] == "processed" for i in ids)


def test_a_transaction_refused_for_a_missing_item_is_still_split(dao):
    stream_id = f"{NAMESPACE}stream-split.{time.time_ns()}"
    ids = seed_collection(dao, new_owner(), 4)
    writer, calls = counting_writer()
    problems = writer.write(writes(stream_id, [*ids[:2], f"{NAMESPACE}gone.item", *ids[2:]]))
    assert [p is None for p in problems] == [True, True, False, True, True]
    assert calls["TransactWriteItems"] == 1 and calls["PutItem"] == 5  # no stamping again
    assert per_item(receipts(dao, stream_id)) == collections.Counter([*ids, f"{NAMESPACE}gone.item"])


def test_tasks_sharing_a_stream_take_turns_at_the_milliseconds(dao):
    # Given three tasks' writers, one lane each, whose clocks give the same milliseconds
    stream_id = f"{NAMESPACE}stream-lanes.{time.time_ns()}"
    ahead = int(time.time() * 1000) + 3_600_000
    ids = {lane: [f"{new_owner()}.x{i}" for i in range(50)] for lane in range(3)}
    counted = []
    for lane, lane_ids in ids.items():
        writer, calls = counting_writer((3, lane))
        writer.streams._last_ms = ahead
        assert writer.write([ItemWrite(stream_id, {"object_id": i, "success": True}) for i in lane_ids]) \
            == [None] * 50
        counted.append(calls)
    # Then none of them collided: one transaction each, every receipt in its writer's lane
    assert [c["TransactWriteItems"] for c in counted] == [1, 1, 1]
    rows = receipts(dao, stream_id)
    assert len(rows) == 150
    for lane, lane_ids in ids.items():
        assert {r["timestamp"] % 3 for r in rows if r["object_id"] in lane_ids} == {lane}
