"""Jobs as plus-engine and the upstream launch scripts write them (SPEC §8.1), through
``python -m src.worker`` on the real local stack: script inputs pre-filled in ``registers``,
the ``username`` register, and the initial ``status: "PENDING"`` form."""

from __future__ import annotations

import time
from typing import Any

from feaas.objects import Parameter
from feaas.objects import ParameterType as PT
from tests.support.collections import new_owner, receipts, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, USERNAME, action, job_item, script


def add_script() -> Any:
    """Declared inputs a, b (INTEGER) and name (STRING, default "nobody") → sum and name."""
    return script([action("add", "sys.math.add"), action("echo", "sys.debug.echo")],
                  ["mainInput:a -> add:a", "mainInput:b -> add:b", "mainInput:name -> echo:name",
                   "add:sum -> mainOutput:sum", "echo:name -> mainOutput:name"],
                  inputs=[Parameter(var_name="a", ptype=PT.INTEGER),
                          Parameter(var_name="b", ptype=PT.INTEGER),
                          Parameter(var_name="name", ptype=PT.STRING, sdefault="nobody")])


def start_script_registers(**values: dict[str, Any]) -> dict[str, Any]:
    """Registers as plus-engine's ``start_script`` writes them: ``mainInput:{var}`` and a bare ``{var}``."""
    registers: dict[str, Any] = {}
    for name, value in values.items():
        registers[f"mainInput:{name}"] = registers[name] = value
    return registers


def test_inputs_only_in_the_registers_run_the_script(put_job, run_worker):
    # Given a job in plus-engine's form whose inputs are only in its registers (AnyType, int64 as
    # text, STRING ptype omitted; b as text for an INTEGER input) and no input_data
    registers = start_script_registers(a={"ptype": "INTEGER", "ival": "5"}, b={"sval": "7"},
                                       name={"sval": "hello"})
    item = job_item(add_script(), registers=registers)
    assert "input_data" not in item
    # When the worker runs it
    run = run_worker(put_job(item))
    # Then it SUCCEEDED with outputs from the registers, converted to the declared types
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    job = run.job
    assert job["status"] == "SUCCEEDED" and "error_message" not in job
    assert job["output"]["sum"] == {"ptype": "INTEGER", "ival": "12"}
    assert job["output"]["name"] == {"sval": "hello"}
    assert job["registers"]["mainInput:b"] == {"ptype": "INTEGER", "ival": "7"}
    assert job["registers"]["b"] == {"sval": "7"}  # plus-engine's own register is kept as written
    # and the username register is set, as upstream does
    assert job["registers"]["username"] == {"sval": USERNAME}


def test_input_data_beats_the_registers_and_a_bare_register_beats_the_default(put_job, run_worker):
    # Given a in input_data and in the registers, and name only as a bare register
    registers = {"mainInput:a": {"ptype": "INTEGER", "ival": "5"}, "a": {"ptype": "INTEGER", "ival": "5"},
                 "mainInput:b": {"ptype": "INTEGER", "ival": "7"}, "name": {"sval": "bare"}}
    run = run_worker(put_job(job_item(add_script(), registers=registers, input_data={"a": "100"})))
    # Then input_data's a, the register's b and the bare register's name were used
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.job["output"]["sum"]["ival"] == "107"
    assert run.job["output"]["name"] == {"sval": "bare"}


def test_a_register_that_does_not_convert_fails_the_job_naming_input_and_value(put_job, run_worker):
    registers = start_script_registers(a={"sval": "five"}, b={"ptype": "INTEGER", "ival": "7"})
    run = run_worker(put_job(job_item(add_script(), registers=registers)))
    assert run.code == 1
    assert run.job["status"] == "FAILED"
    assert "script input 'a' expects INTEGER, got 'five'" in run.job["error_message"]
    assert "add" not in run.job.get("receipts", {})


def test_username_register_is_set_on_a_job_without_registers(put_job, run_worker):
    run = run_worker(put_job(job_item(add_script(), input_data={"a": 1, "b": 2})))
    assert run.code == 0, run.stdout[-3000:]
    assert run.job["registers"]["username"] == {"sval": USERNAME}
    assert run.job["registers"]["mainInput:name"] == {"sval": "nobody"}


def test_pending_job_from_the_upstream_launch_scripts_is_claimed_and_succeeds(put_job, run_worker):
    # Given a job as the upstream launch scripts write it: PENDING, ms timestamps, explicit defaults
    created_ms = int(time.time() * 1000) - 5000
    item = job_item(add_script(), status="PENDING", created_at=created_ms, updated_at=created_ms,
                    request_cancel=False, error_message="",
                    registers=start_script_registers(a={"ptype": "INTEGER", "ival": "2"},
                                                     b={"ptype": "INTEGER", "ival": "3"}))
    # When the worker runs it
    run = run_worker(put_job(item))
    # Then it was claimed and SUCCEEDED; created_at is untouched and no error message is left
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    job = run.job
    assert job["status"] == "SUCCEEDED" and job["output"]["sum"]["ival"] == "5"
    assert job.get("error_message", "") == ""
    assert job["created_at"] == created_ms
    assert job["request_cancel"] is False and job["attempt"] == 1 and job["started_at"] > 0
    assert run.events("job_claimed")


def test_collection_item_attribute_beats_the_register(dao, put_job, run_worker):
    # Given items with n (and one without), n pre-filled in the job's registers, and a
    # required input with a default that nothing supplies
    owner = new_owner()
    ids = seed_collection(dao, owner, 4, make=lambda i: {"n": i * 10} if i < 3 else {"other": "no n"})
    s = tag_script()
    s.inputs.extend([Parameter(var_name="n", ptype=PT.INTEGER),
                     Parameter(var_name="label", sdefault="unused")])
    item = job_item(s, collection_owner=owner,
                    registers=start_script_registers(n={"ptype": "INTEGER", "ival": "100"}))
    # When the worker runs the script over the collection
    job_id = put_job(item)
    run = run_worker(job_id, RUN_MODE="RUN_COLLECTION")
    # Then items use their own n, the one without n uses the register's, and the default counts
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (run.job["success_count"], run.job["error_count"]) == (4, 0)
    job_uuid = job_id.rsplit("job.", 1)[1]
    rows = receipts(dao, f"{NAMESPACE}stream-run-all.{job_uuid}")
    sums = {r["object_id"]: r["outputs"]["sum"]["ival"] for r in rows}
    assert sums == {ids[0]: "1", ids[1]: "11", ids[2]: "21", ids[3]: "101"}
    assert dao.docs.get(ids[1])["n_plus_one"] == 11 and dao.docs.get(ids[3])["n_plus_one"] == 101
