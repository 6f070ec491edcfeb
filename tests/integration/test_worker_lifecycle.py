"""The worker as Fargate runs it (``python -m src.worker``) against DynamoDB Local and SeaweedFS."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from feaas.dao import Update
from tests.support.scripts import USERNAME, action, add_and_nap_script, job_item, script


def test_script_job_succeeds_with_registers_receipts_output(put_job, run_worker):
    # Given a job as plus-engine writes it (int64 strings, enum names) with inputs
    job_id = put_job(job_item(add_and_nap_script(0.1), input_data={"a": 2, "b": 40}, request_cancel=False,
                              custom_field={"kept": True}))
    # When the worker runs it
    run = run_worker(job_id)
    # Then it is SUCCEEDED with output, receipts, registers and bookkeeping
    assert run.code == 0, run.stdout + run.stderr
    job = run.job
    assert job["status"] == "SUCCEEDED"
    assert job["output"]["sum"] == {"ptype": "INTEGER", "ival": "42"}
    assert job["output"]["message"]["sval"] == "slept 0.1 s"
    assert job["receipts"]["add"]["success"] is True and job["receipts"]["nap"]["success"] is True
    assert job["registers"]["add:sum"]["ival"] == "42"
    assert job["action_count"] == 2 and job["percent"] == 100
    assert job["attempt"] == 1 and job["iteration"] == 1
    assert job["started_at"] <= job["completed_at"]
    assert "lease_owner" not in job and "error_message" not in job
    # attributes the worker does not own survive
    assert job["custom_field"] == {"kept": True} and job["input_data"] == {"a": 2, "b": 40}
    assert job["request_cancel"] is False
    # and the log is JSON lines ending with job_finished
    assert run.lines[-1]["event"] == "job_finished" and run.lines[-1]["status"] == "SUCCEEDED"
    assert all(line["job_id"] == job_id and line["run_mode"] == "RUN_SCRIPT" for line in run.lines)
    assert run.events("node_finished")[0]["attempt"] == 1


def test_job_written_with_numbers_is_accepted(put_job, run_worker):
    item = job_item(add_and_nap_script(0), numbers=True, input_data={"a": 1, "b": 1}, status=0)
    run = run_worker(put_job(item))
    assert run.code == 0, run.stdout
    assert run.job["output"]["sum"]["ival"] == "2"


def test_action_failure_is_recorded(put_job, run_worker):
    s = script([action("boom", "sys.debug.fail", message="the disk is full")])
    run = run_worker(put_job(job_item(s)))
    assert run.code == 1
    assert run.job["status"] == "FAILED"
    assert "the disk is full" in run.job["error_message"] and "boom" in run.job["error_message"]
    boom = run.job["receipts"]["boom"]
    assert boom["success"] is False if "success" in boom else True


def test_unknown_action_fails_before_anything_runs(put_job, run_worker):
    s = script([action("nap", "sys.debug.nap"), action("evil", "os.system")], ["mainInput:s -> nap:seconds"])
    run = run_worker(put_job(job_item(s, input_data={"s": 0})))
    assert run.code == 1
    assert run.job["status"] == "FAILED"
    assert "unknown action id 'os.system'" in run.job["error_message"]
    assert not run.job.get("receipts")  # nothing ran
    assert "Traceback" not in run.stdout + run.stderr


def test_missing_configuration_exits_2_listing_every_name_without_secrets(run_worker, dao):
    run = run_worker("x", RUN_MODE=None, USERNAME=None, REGION=None, ACCESS_KEY="AKIADISTINCT",
                     SECRET_KEY=None,
                     CONCURRENCY="lots")
    assert run.code == 2
    for name in ("RUN_MODE", "USERNAME", "REGION", "CONCURRENCY", "ACCESS_KEY/SECRET_KEY"):
        assert name in run.stderr
    assert "AKIADISTINCT" not in run.stdout + run.stderr and "Traceback" not in run.stderr


def test_job_not_found_exits_3_and_creates_nothing(run_worker, dao):
    job_id = f"plus_example_com/{USERNAME}/job.missing-{time.time_ns()}"
    run = run_worker(job_id)
    assert run.code == 3
    assert dao.docs.get(job_id) is None
    assert "not found" in run.stdout


def test_finished_job_exits_3_and_is_unchanged(put_job, run_worker, dao):
    job_id = put_job(job_item(add_and_nap_script(0), status="SUCCEEDED", input_data={"a": 1, "b": 2}))
    before = dao.docs.get(job_id)
    run = run_worker(job_id)
    assert run.code == 3 and "already finished" in run.stdout
    assert dao.docs.get(job_id) == before


def test_two_workers_at_once_exactly_one_runs(put_job, run_worker, dao):
    job_id = put_job(job_item(add_and_nap_script(1.0), input_data={"a": 1, "b": 2}))
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: run_worker(job_id), range(2)))
    assert sorted(r.code for r in runs) == [0, 3]
    final = dao.docs.get(job_id)  # read after both finished
    assert final["status"] == "SUCCEEDED" and final["attempt"] == 1


def test_cancel_request_stops_a_nap_within_a_heartbeat(put_job, start_worker, dao):
    s = script([action("nap", "sys.debug.nap")], ["mainInput:s -> nap:seconds"])
    job_id = put_job(job_item(s, input_data={"s": 60}))
    proc = start_worker(job_id, HEARTBEAT_SECONDS=1)
    deadline = time.monotonic() + 30
    while dao.docs.get(job_id).get("status") != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    dao.docs.update(job_id, Update(set={"request_cancel": True}))
    asked = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert time.monotonic() - asked < 5
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["error_message"] == "Job was cancelled by user"
    assert job["request_cancel"] is True and job["input_data"] == {"s": 60} and job["cancelled_at"] > 0


def test_deadline_exceeded_fails_with_timed_out(put_job, run_worker):
    s = script([action("nap", "sys.debug.nap")], ["mainInput:s -> nap:seconds"])
    run = run_worker(put_job(job_item(s, input_data={"s": 60}, timeout_seconds=2)))
    assert run.code == 1
    assert run.job["status"] == "FAILED" and run.job["error_message"] == "timed out after 2 s"


def test_max_runtime_setting_applies_when_job_has_no_timeout(put_job, run_worker):
    s = script([action("nap", "sys.debug.nap")], ["mainInput:s -> nap:seconds"])
    run = run_worker(put_job(job_item(s, input_data={"s": 60})), MAX_RUNTIME_SECONDS=1.5)
    assert run.code == 1 and run.job["error_message"] == "timed out after 1.5 s"


def test_run_action_records_one_node(put_job, run_worker):
    job_id = put_job(job_item())
    run = run_worker(job_id, RUN_MODE="RUN_ACTION", ACTION_ID="sys.math.add.Add",
                     ACTION_INPUT_JSON=json.dumps({"a": 5, "b": "6"}))
    assert run.code == 0, run.stdout
    assert run.job["receipts"]["action"]["success"] is True
    assert run.job["output"] == {"sum": {"ptype": "INTEGER", "ival": "11"}}


def test_run_action_with_bad_json_is_recorded_failed(put_job, run_worker):
    job_id = put_job(job_item())
    run = run_worker(job_id, RUN_MODE="RUN_ACTION", ACTION_ID="sys.math.add", ACTION_INPUT_JSON="{not json")
    assert run.code == 1
    assert run.job["status"] == "FAILED" and "ACTION_INPUT_JSON is not valid JSON" in run.job["error_message"]


def test_username_mismatch_is_recorded_failed(put_job, run_worker):
    job_id = put_job(job_item(add_and_nap_script(0), input_data={"a": 1, "b": 1}))
    run = run_worker(job_id, USERNAME="mallory@example.com")
    assert run.code == 1
    assert "username mismatch" in run.job["error_message"] and not run.job.get("receipts")


def test_malformed_script_is_recorded_failed(put_job, run_worker):
    item = job_item()
    item["script"] = "definitely not a script"
    run = run_worker(put_job(item))
    assert run.code == 1 and run.job["status"] == "FAILED"
    assert "invalid job document" in run.job["error_message"] and "script" in run.job["error_message"]
