"""JobRecord and Heartbeat straight against DynamoDB Local: every write is conditional on the
transitions table, so a second task, a lost lease or a finished job is refused by the table itself.

A fake clock moves leases past their expiry; no test sleeps to wait for one.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from feaas.dao import Dao, Update
from feaas.errors import Cancelled, DeadlineExceeded, JobNotClaimable, LeaseLost
from feaas.jobs import Heartbeat, JobRecord, JobStatus, Progress
from feaas.jobs.chunks import Chunk, ChunkedJobRecord
from feaas.stopping import StopSignal
from tests.support.scripts import job_item

LEASE_S = 90


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def new_job(dao: Dao):
    def make(**attrs: Any) -> str:
        item = job_item(custom_field={"kept": True}, **attrs)
        dao.docs.put_new(item)
        return str(item["object_id"])

    return make


def task(dao: Dao, job_id: str, clock: Clock, name: str) -> JobRecord:
    return JobRecord(dao.docs, job_id, lease_seconds=LEASE_S, clock=clock, lease_owner=name,
                     task_arn=f"arn:{name}")


def test_claim_takes_an_initializing_job_and_keeps_other_attributes(dao, new_job, clock):
    # Given a job as plus-engine writes it
    job_id = new_job(status="INITIALIZING", request_cancel=False)
    # When a task claims it
    item = task(dao, job_id, clock, "a").claim()
    # Then it is RUNNING under that task's lease, and nothing else was lost
    assert item["status"] == "RUNNING" and item["attempt"] == 1
    assert item["lease_owner"] == "a" and item["lease_expires_at"] == clock.now + LEASE_S
    assert item["started_at"] == item["updated_at"] == clock.now and item["fargate_task_arn"] == "arn:a"
    assert item["custom_field"] == {"kept": True} and item["request_cancel"] is False
    assert dao.docs.get(job_id) == item


@pytest.mark.parametrize("stored", ["PENDING", "", 0, None])
def test_every_initial_form_is_claimable(dao, new_job, clock, stored):
    job_id = new_job(**({} if stored is None else {"status": stored}))
    assert task(dao, job_id, clock, "a").claim()["status"] == "RUNNING"


def test_a_live_lease_refuses_a_second_task(dao, new_job, clock):
    job_id = new_job()
    task(dao, job_id, clock, "a").claim()
    clock.now += LEASE_S - 1
    with pytest.raises(JobNotClaimable, match="held by another live task"):
        task(dao, job_id, clock, "b").claim()
    assert dao.docs.get(job_id)["lease_owner"] == "a"


def test_a_claim_retried_after_it_landed_counts_one_attempt(dao, new_job, clock):
    # Given a claim that landed (its reply lost, botocore sends it again)
    job_id = new_job()
    first = task(dao, job_id, clock, "a")
    first.claim()
    # When the same task's claim arrives again
    again = first.claim()
    # Then it is recognised as its own: one attempt, same lease
    assert again["attempt"] == 1 and again["lease_owner"] == "a"
    assert dao.docs.get(job_id)["attempt"] == 1


def test_heartbeat_renews_the_lease_and_saves_progress(dao, new_job, clock):
    job_id = new_job()
    record = task(dao, job_id, clock, "a")
    record.claim()
    clock.now += 30
    item = record.heartbeat({"percent": 50, "action_count": 3})
    assert item["lease_expires_at"] == clock.now + LEASE_S and item["updated_at"] == clock.now
    assert item["percent"] == 50 and item["action_count"] == 3 and item["status"] == "RUNNING"


def test_an_expired_lease_is_taken_over_and_the_old_task_loses_it(dao, new_job, clock):
    # Given a task whose lease ran out (it crashed, or stalled)
    job_id = new_job()
    old = task(dao, job_id, clock, "a")
    old.claim()
    clock.now += LEASE_S + 1
    # When another task claims the job
    item = task(dao, job_id, clock, "b").claim()
    # Then it holds the job as a second attempt
    assert item["lease_owner"] == "b" and item["attempt"] == 2 and item["status"] == "RUNNING"
    # and the old task can neither renew nor finish: it stops without writing
    with pytest.raises(LeaseLost, match="held by another live task"):
        old.heartbeat({"percent": 99})
    with pytest.raises(LeaseLost):
        old.finish(JobStatus.SUCCEEDED, {"percent": 100})
    stored = dao.docs.get(job_id)
    assert stored["status"] == "RUNNING" and stored["lease_owner"] == "b" and "percent" not in stored


def test_finish_ends_the_lease_and_the_job_is_not_claimable_again(dao, new_job, clock):
    job_id = new_job()
    record = task(dao, job_id, clock, "a")
    record.claim()
    record.heartbeat({"error_message": "stale"})
    clock.now += 5
    assert record.finish(JobStatus.SUCCEEDED, {"percent": 100},
                         remove=("error_message",)) is JobStatus.SUCCEEDED
    stored = dao.docs.get(job_id)
    assert stored["status"] == "SUCCEEDED" and stored["completed_at"] == clock.now
    assert stored["finished_by"] == "a"
    assert "lease_owner" not in stored and "lease_expires_at" not in stored and "error_message" not in stored
    assert stored["custom_field"] == {"kept": True}
    # A finish retried after it landed is recognised as its own
    assert record.finish(JobStatus.SUCCEEDED, {"percent": 100}) is JobStatus.SUCCEEDED
    clock.now += LEASE_S * 10
    with pytest.raises(JobNotClaimable, match=r"already finished \(SUCCEEDED\)"):
        task(dao, job_id, clock, "b").claim()


def test_a_resumable_failed_job_is_claimed_again_and_a_plain_failed_one_is_not(dao, new_job, clock):
    # Given a job interrupted by SIGTERM (FAILED, resumable) and one that simply failed
    resumable, failed = new_job(), new_job()
    for job_id, attrs in ((resumable, {"resumable": True, "error_message": "interrupted"}),
                          (failed, {"error_message": "boom"})):
        record = task(dao, job_id, clock, "a")
        record.claim()
        record.finish(JobStatus.FAILED, attrs)
    # When a relaunched task claims each
    item = task(dao, resumable, clock, "b").claim()
    # Then the interrupted one runs again as a second attempt, no longer marked resumable or finished
    assert item["status"] == "RUNNING" and item["attempt"] == 2 and item["lease_owner"] == "b"
    assert "resumable" not in item and "completed_at" not in item and "finished_by" not in item
    # and the failed one stays as it was
    with pytest.raises(JobNotClaimable, match=r"already finished \(FAILED\)"):
        task(dao, failed, clock, "b").claim()
    assert dao.docs.get(failed)["error_message"] == "boom"


def test_missing_and_unrecognised_jobs_are_not_claimable(dao, new_job, clock):
    with pytest.raises(JobNotClaimable, match="not found"):
        task(dao, "plus_example_com/alice@example.com/job.missing", clock, "a").claim()
    job_id = new_job(status="ARCHIVED")
    with pytest.raises(JobNotClaimable, match="unrecognised status 'ARCHIVED'"):
        task(dao, job_id, clock, "a").claim()
    assert dao.docs.get(job_id)["status"] == "ARCHIVED"


def heartbeat(record: JobRecord, stop: StopSignal, **kwargs: Any) -> Heartbeat:
    return Heartbeat(record, Progress(), stop, period_s=0.05, min_interval_s=0.05, **kwargs)


def test_the_heartbeat_sees_a_cancel_request(dao, new_job, clock):
    job_id = new_job()
    record = task(dao, job_id, clock, "a")
    record.claim()
    stop = StopSignal()
    beat = heartbeat(record, stop)
    beat.start()
    try:
        dao.docs.update(job_id, Update(set={"request_cancel": True}))
        assert stop.event.wait(30)
    finally:
        beat.close()
    assert isinstance(stop.reason, Cancelled)


def test_the_heartbeat_stops_the_run_when_the_lease_is_lost(dao, new_job, clock):
    job_id = new_job()
    record = task(dao, job_id, clock, "a")
    record.claim()
    clock.now += LEASE_S + 1
    task(dao, job_id, clock, "b").claim()
    stop = StopSignal()
    beat = heartbeat(record, stop)
    beat.start()
    try:
        assert stop.event.wait(30)
    finally:
        beat.close()
    assert isinstance(stop.reason, LeaseLost)
    assert dao.docs.get(job_id)["lease_owner"] == "b"


def test_the_heartbeat_writes_progress_when_it_changes(dao, new_job, clock):
    job_id = new_job()
    record = task(dao, job_id, clock, "a")
    record.claim()
    progress = Progress()
    beat = Heartbeat(record, progress, StopSignal(), period_s=3600, min_interval_s=0.05)
    beat.start()
    try:
        progress.update(percent=12.5)
        deadline = time.monotonic() + 30
        while dao.docs.get(job_id).get("percent") != 12.5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        beat.close()
    assert dao.docs.get(job_id)["percent"] == 12.5


def test_the_heartbeat_enforces_the_deadline(dao, new_job, clock):
    job_id = new_job()
    record = task(dao, job_id, clock, "a")
    record.claim()
    stop = StopSignal()
    beat = heartbeat(record, stop, deadline_at=time.monotonic(), timeout_s=7)
    beat.start()
    try:
        assert stop.event.wait(30)
    finally:
        beat.close()
    assert isinstance(stop.reason, DeadlineExceeded) and str(stop.reason) == "timed out after 7 s"


def chunked_task(dao: Dao, job_id: str, clock: Clock, name: str) -> ChunkedJobRecord:
    return ChunkedJobRecord(dao.docs, job_id, lease_seconds=LEASE_S, clock=clock, lease_owner=name)


def planned(dao: Dao, new_job: Any, clock: Clock, chunks: int) -> ChunkedJobRecord:
    """A many-item job joined by task "a", with a READY plan of ``chunks`` chunks."""
    rec = chunked_task(dao, new_job(), clock, "a")
    rec.claim()
    assert rec.take_plan() is not None
    for index in range(chunks):
        rec.publish(index, 10, 10 * (index + 1), None if index == chunks - 1 else {"k": index},
                    final=index == chunks - 1)
    return rec


def test_an_old_view_of_the_job_never_gives_a_task_its_own_chunk_twice(dao, new_job, clock):
    # Given a task that claimed chunk 0, whose view of the job is then replaced by an older one
    # (the reply of an earlier write, e.g. its heartbeat's, arriving after the claim's), all in
    # the same second
    rec = planned(dao, new_job, clock, 3)
    before = dict(rec.doc)
    first = rec.claim_chunk()
    assert isinstance(first, Chunk) and first.index == 0
    rec.doc = before
    # When it claims again
    second = rec.claim_chunk()
    # Then it gets the next chunk, not chunk 0 a second time
    assert isinstance(second, Chunk) and second.index == 1 and not second.taken_over
    assert dao.docs.get(rec.job_id)["chunk_next"] == 2


def test_an_old_view_showing_its_own_lease_run_out_is_no_takeover(dao, new_job, clock):
    # Given a task holding chunk 0 whose old view shows that chunk's lease run out
    rec = planned(dao, new_job, clock, 2)
    held = rec.claim_chunk()
    assert isinstance(held, Chunk) and held.index == 0
    stale = dict(rec.doc)
    stale["chunks"] = {"c0": {**rec.doc["chunks"]["c0"], "exp": int(clock.now) - 1}}
    rec.doc = stale
    # When it claims again, then it takes the next chunk, never its own held one
    again = rec.claim_chunk()
    assert isinstance(again, Chunk) and again.index == 1 and not again.taken_over


def test_a_chunk_claim_that_landed_and_was_sent_again_is_recognised(dao, new_job, clock, monkeypatch):
    # Given a chunk claim whose reply is lost after it landed (botocore sends it again and the
    # table refuses the second one)
    rec = planned(dao, new_job, clock, 2)
    real_update = rec.docs.client.update_item

    def landed_then_refused(**request: Any) -> Any:
        real_update(**request)
        return real_update(**request)

    monkeypatch.setattr(rec.docs.client, "update_item", landed_then_refused)
    got = rec.claim_chunk()
    monkeypatch.undo()
    # Then the task takes it as its own claim
    assert isinstance(got, Chunk) and got.index == 0
    assert dao.docs.get(rec.job_id)["chunks"]["c0"]["by"] == "a"
