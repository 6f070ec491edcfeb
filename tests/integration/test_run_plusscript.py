"""RUN_MODE=RUN_PLUSSCRIPT through ``python -m src.worker`` on the local stack (issue 12 item 6): a
stored script (plus-engine's document form, Node.js Buffers and all) run with ACTION_INPUT_JSON and
recorded on the JOB_ID document; another user's script and a missing one end FAILED, nothing run."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from feaas.dao import Dao
from feaas.dao.codec import message_to_plain
from feaas.runners.plusscript import clean_script
from tests.support.scripts import HOSTNAME, NAMESPACE, add_and_nap_script, job_item

BUFFER = {"type": "Buffer", "data": [137, 80, 78, 71]}


def stored_script(namespace: str = NAMESPACE) -> dict[str, Any]:
    """add_and_nap as the frontend stores it: Decimals, Buffer-encoded byval, Buffers in a list and
    in an unknown attribute, enum names, int64 as text, unknown attributes."""
    doc = message_to_plain(add_and_nap_script(0.1))
    doc["object_id"] = f"{namespace}script.{uuid.uuid4()}"
    doc["owner"] = f"{namespace}script"
    doc["version"] = "3"
    secs = next(n for n in doc["nodes"] if n["unique_id"] == "secs")
    secs["value"] = {"ptype": "FLOAT", "dval": Decimal("0.1"), "byval": BUFFER}
    secs["position"] = {"x": Decimal("120.5"), "y": Decimal(80)}  # unknown to the message: ignored
    secs["outputs"].append(BUFFER)  # would be a null list element upstream
    doc["thumbnail"] = BUFFER
    doc["frontendState"] = {"zoom": Decimal("1.25"), "blobs": [BUFFER, "x"]}
    return doc


def test_cleaning_drops_buffers_and_decimals() -> None:
    cleaned = clean_script(
        {"a": [BUFFER, Decimal(2), {"byval": BUFFER, "dval": Decimal("0.5")}], "b": BUFFER, "c": None}
    )
    assert cleaned == {"a": [2, {"dval": 0.5}], "c": None}
    assert json.dumps(cleaned)  # plain JSON now


def test_stored_script_runs_and_is_recorded_on_the_job(dao: Dao, put_job, run_worker) -> None:  # type: ignore[no-untyped-def]
    script = stored_script()
    dao.docs.put_new(script)
    job_id = put_job(job_item())
    run = run_worker(
        job_id,
        RUN_MODE="RUN_PLUSSCRIPT",
        ACTION_ID=script["object_id"],
        ACTION_INPUT_JSON='{"a": 2, "b": 40, "job_id": "ignored"}',
    )
    assert run.code == 0, run.stdout + run.stderr
    job = run.job
    assert job is not None and job["status"] == "SUCCEEDED", job
    assert job["output"]["sum"]["ival"] == "42"
    assert job["output"]["message"]["sval"]  # the nap node ran after add
    assert set(job["receipts"]) == {"add", "nap"}
    assert job["percent"] == 100 and job["action_count"] == 2
    assert run.events("plusscript_loaded")[0]["script_id"] == script["object_id"]
    assert "lease_owner" not in job


def test_another_users_script_is_refused_and_nothing_runs(dao: Dao, put_job, run_worker) -> None:  # type: ignore[no-untyped-def]
    script = stored_script(f"{HOSTNAME}/mallory@example.com/")
    dao.docs.put_new(script)
    job_id = put_job(job_item())
    run = run_worker(
        job_id, RUN_MODE="RUN_PLUSSCRIPT", ACTION_ID=script["object_id"], ACTION_INPUT_JSON='{"a": 1, "b": 2}'
    )
    assert run.code == 1
    assert run.job is not None and run.job["status"] == "FAILED"
    assert (
        "is not in the namespace" in run.job["error_message"]
        and "nothing was run" in run.job["error_message"]
    )
    assert not run.job.get("receipts") and not run.events("node_started")


def test_a_script_in_the_users_namespace_owned_by_another_is_refused(dao: Dao, put_job, run_worker) -> None:  # type: ignore[no-untyped-def]
    script = stored_script()
    script["owner"] = f"{HOSTNAME}/mallory@example.com/script"
    dao.docs.put_new(script)
    job_id = put_job(job_item())
    run = run_worker(job_id, RUN_MODE="RUN_PLUSSCRIPT", ACTION_ID=script["object_id"])
    assert run.code == 1 and run.job is not None and run.job["status"] == "FAILED"
    assert "is owned by" in run.job["error_message"] and not run.events("node_started")


def test_missing_script_fails_naming_it(put_job, run_worker) -> None:  # type: ignore[no-untyped-def]
    missing = f"{NAMESPACE}script.{uuid.uuid4()}"
    job_id = put_job(job_item())
    run = run_worker(job_id, RUN_MODE="RUN_PLUSSCRIPT", ACTION_ID=missing)
    assert run.code == 1 and run.job is not None and run.job["status"] == "FAILED"
    assert run.job["error_message"] == f"script {missing!r} not found"


def test_bad_inputs_and_missing_action_id(put_job, run_worker, dao: Dao) -> None:  # type: ignore[no-untyped-def]
    script = stored_script()
    dao.docs.put_new(script)
    job_id = put_job(job_item())
    run = run_worker(
        job_id, RUN_MODE="RUN_PLUSSCRIPT", ACTION_ID=script["object_id"], ACTION_INPUT_JSON="[1]"
    )
    assert run.code == 1 and run.job is not None and run.job["status"] == "FAILED"
    assert run.job["error_message"] == "ACTION_INPUT_JSON must be a JSON object, got list"
    job_id = put_job(job_item())
    run = run_worker(job_id, RUN_MODE="RUN_PLUSSCRIPT", ACTION_ID=None)
    assert run.code == 2 and "ACTION_ID: required for RUN_PLUSSCRIPT" in run.stderr
