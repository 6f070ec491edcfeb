"""Live controls on the job record (issue 17 item 4, SPEC §8.5): ``concurrency``,
``tolerated_failure_percent`` and ``request_pause`` read by the heartbeat, on the real local stack."""

from __future__ import annotations

import collections
import json
from decimal import Decimal
from typing import Any

import pytest

from feaas.dao import Update
from feaas.jobs import Heartbeat, JobRecord, Progress
from feaas.jobs.controls import LiveControls
from feaas.stopping import StopSignal
from tests.support.collections import nap_script, new_owner, receipts, seed_collection
from tests.support.scripts import NAMESPACE, job_item
from tests.support.waiting import wait_for


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"



def set_controls(dao: Any, job_id: str, **values: Any) -> None:
    """What an operator (or the frontend) writes: named attributes of the job record."""
    dao.docs.update(job_id, Update(set=values))


@pytest.fixture
def beat(dao: Any, put_job: Any) -> Any:
    """A claimed job, its controls, and one heartbeat as the heartbeat thread does it (one write
    that renews the lease and saves progress, then a look at the document that write returned)."""
    job_id = put_job(job_item(nap_script(0)))
    record = JobRecord(dao.docs, job_id, lease_seconds=30)
    record.claim()
    progress = Progress()
    controls = LiveControls(concurrency=4, tolerated_failure_percent=None, publish=progress.update)
    heartbeat = Heartbeat(record, progress, StopSignal(), period_s=1, controls=controls)

    def one_beat() -> dict[str, Any]:
        heartbeat.check_job_doc(record.heartbeat(progress.snapshot()[1]))
        return dao.docs.get(job_id)  # type: ignore[no-any-return]

    one_beat.job_id = job_id  # type: ignore[attr-defined]
    one_beat.controls = controls  # type: ignore[attr-defined]
    return one_beat


def test_pause_concurrency_and_resume_are_each_seen_by_the_next_heartbeat(dao, beat, caplog):
    controls, job_id = beat.controls, beat.job_id
    caplog.set_level("INFO", logger="feaas.jobs.controls")
    # pause
    set_controls(dao, job_id, request_pause=True)
    beat()
    assert controls.pause_requested is True
    # concurrency 4 -> 16
    set_controls(dao, job_id, concurrency=16)
    beat()
    assert controls.concurrency == 16
    shown = beat()  # the change is saved by the write after the one that read it
    assert shown["active_concurrency"] == 16
    assert shown["last_control_change"] == "concurrency 4 -> 16"
    # resume
    set_controls(dao, job_id, request_pause=False)
    beat()
    assert controls.pause_requested is False
    changes = [(r.fields["control"], r.fields["old"], r.fields["new"])  # type: ignore[attr-defined]
               for r in caplog.records if r.getMessage() == "control_changed"]
    assert changes == [("request_pause", False, True), ("concurrency", 4, 16), ("request_pause", True, False)]


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("concurrency", 0, "whole number from 1 to 256"),
        ("concurrency", 257, "whole number from 1 to 256"),
        ("concurrency", Decimal("2.5"), "whole number from 1 to 256"),
        ("concurrency", "16", "whole number from 1 to 256"),
        ("tolerated_failure_percent", -1, "number from 0 to 100"),
        ("tolerated_failure_percent", 101, "number from 0 to 100"),
        ("request_pause", "true", "a boolean, not text"),
    ],
)
def test_bad_control_keeps_the_previous_setting_and_says_why(dao, beat, caplog, name, value, why):
    controls, job_id = beat.controls, beat.job_id
    set_controls(dao, job_id, concurrency=6, tolerated_failure_percent=5)
    beat()
    caplog.set_level("INFO", logger="feaas.jobs.controls")
    set_controls(dao, job_id, **{name: value})
    beat()
    shown = beat()
    in_effect = (controls.concurrency, controls.tolerated_failure_percent, controls.pause_requested)
    assert in_effect == (6, 5, False)
    assert shown["status"] == "RUNNING"
    assert why in shown["last_control_change"] and "refused" in shown["last_control_change"]
    refused = [r for r in caplog.records if r.getMessage() == "control_refused"]
    assert len(refused) == 1 and why in refused[0].fields["reason"]  # type: ignore[attr-defined]
    beat()  # the same refused value is not logged again on every heartbeat
    assert len([r for r in caplog.records if r.getMessage() == "control_refused"]) == 1


def test_collection_run_pauses_grows_to_16_in_flight_and_resumes(dao, put_job, start_worker):
    # Given a collection of nap items running with 4 in flight
    owner = new_owner()
    ids = seed_collection(dao, owner, 1200)  # 15 s at 4 in flight: far longer than a pause takes to be seen
    job_id = put_job(job_item(nap_script(0.05), collection_owner=owner))
    proc = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=4)
    wait_for(lambda: len(receipts(dao, run_all(job_id))) >= 20, timeout=60)
    # When a pause is requested
    set_controls(dao, job_id, request_pause=True)
    # Then the items in flight finish and are saved, and the record says paused while RUNNING
    wait_for(lambda: dao.docs.get(job_id).get("paused") is True, timeout=60)
    paused = dao.docs.get(job_id)
    at_pause = len(receipts(dao, run_all(job_id)))
    assert paused["status"] == "RUNNING" and at_pause < len(ids)
    # everything started is saved and counted: in done chunks, or in flight in the task's open chunk
    [task] = paused["tasks"].values()
    assert paused["success_count"] + task["inflight"] == at_pause
    # and while paused, the heartbeat keeps the task's lease alive and nothing more runs
    lease = task["lease_expires_at"]

    def task_lease() -> int:
        return int(next(iter(dao.docs.get(job_id)["tasks"].values()))["lease_expires_at"])

    wait_for(lambda: task_lease() > lease, timeout=60)
    wait_for(lambda: task_lease() > lease + 1, timeout=60)
    assert len(receipts(dao, run_all(job_id))) == at_pause
    # When concurrency goes from 4 to 16 (still paused), then the pause is lifted
    set_controls(dao, job_id, concurrency=16)
    wait_for(lambda: dao.docs.get(job_id).get("active_concurrency") == 16, timeout=60)
    assert len(receipts(dao, run_all(job_id))) == at_pause
    set_controls(dao, job_id, request_pause=False)
    # Then the run resumes and ends with every item recorded exactly once
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and job["paused"] is False and job["success_count"] == len(ids)
    counts = collections.Counter(r["object_id"] for r in receipts(dao, run_all(job_id)))
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    changes = [(e["control"], e["old"], e["new"]) for e in events if e["event"] == "control_changed"]
    assert changes == [("request_pause", False, True), ("concurrency", 4, 16), ("request_pause", True, False)]
    assert names.index("items_paused") < names.index("items_resumed") < names.index("items_finished")


def test_a_paused_run_lowered_to_one_in_flight_can_still_be_cancelled(dao, put_job, start_worker):
    owner = new_owner()
    seed_collection(dao, owner, 3000)  # 19 s at 8 in flight: far longer than a pause takes to be seen
    job_id = put_job(job_item(nap_script(0.05), collection_owner=owner))
    proc = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=8)
    wait_for(lambda: len(receipts(dao, run_all(job_id))) >= 20, timeout=60)
    set_controls(dao, job_id, concurrency=1, request_pause=True)
    wait_for(lambda: dao.docs.get(job_id).get("paused") is True, timeout=60)
    assert dao.docs.get(job_id)["active_concurrency"] == 1
    set_controls(dao, job_id, request_cancel=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out[-3000:] + err[-3000:]
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["error_message"] == "Job was cancelled by user"
    assert job["paused"] is False and job["success_count"] == len(receipts(dao, run_all(job_id)))
