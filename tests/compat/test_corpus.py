"""The compatibility corpus (issue 12 item 7): documents exactly as plus-engine and the frontend write
them, each run through ``python -m src.worker`` on the local stack, outputs and output keys checked.

A case is a JSON file under ``cases/``: ``run_mode``, the ``job`` document (int64 as strings, enums by
name, STRING ptype left out, inputs pre-filled in ``registers``, unknown attributes, status PENDING,
INITIALIZING or absent), and for some modes a ``stored_script`` (RUN_PLUSSCRIPT, with Node.js Buffers),
``documents`` (RUN_COLLECTION's items) and ``env`` (ACTION_ID, ACTION_INPUT_JSON, …). Numbers are stored
as DynamoDB numbers (read as ``Decimal``, as boto3 gives plus-engine). Placeholders: ``{NS}`` the user's
namespace, ``{F}`` the case's media folder (``{F_RE}`` as a regex), ``{JOB}`` a fresh job uuid, ``{HOST}``,
``{USER}``, ``{PAGE}``/``{ORIGIN}`` the loopback page server.

``expect``: the final ``status``; per receipt its ``primary_output`` and ``outputs`` (each an AnyType in
protobuf JSON, compared exactly; ``range`` / ``sval_re`` where a value varies); the job's ``output``; keys
that must ``exist``; ``error`` (a substring of ``error_message``); other job ``fields`` (counts);
``documents`` to read back
(REGISTER_ACTIONS). The media is the small generated set of tests/integration/media/test_legacy_worker.py
(its ``folder`` fixture); what the files hold is checked there, not here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from src.actions.web import chromium
from tests.conftest import OUTPUTS, ROOT, WorkerRun, worker_env
from tests.integration.media.test_legacy_worker import folder, storage  # noqa: F401  (fixtures)
from tests.support.scripts import HOSTNAME, NAMESPACE, USERNAME
from tests.support.webpages import PageServer, colour_page

CASES = sorted((Path(__file__).parent / "cases").glob("*.json"))
CASE_IDS = [p.stem for p in CASES]
IN_FLIGHT = 3  # workers at once: the corpus' wall time stays modest on a 2-core machine


def fill(path: Path, values: dict[str, str]) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("{" + name + "}", json.dumps(value)[1:-1])
    return json.loads(text, parse_float=Decimal)  # type: ignore[no-any-return]


def number(anytype: dict[str, Any]) -> float:
    for field in ("ival", "dval"):
        if field in anytype:
            return float(anytype[field])
    return 0.0  # protobuf JSON leaves out a zero


def check_anytype(actual: Any, expected: dict[str, Any], where: str) -> None:
    assert isinstance(actual, dict), f"{where}: missing (got {actual!r})"
    if "range" in expected or "sval_re" in expected:
        assert actual.get("ptype", "STRING") == expected.get("ptype", "STRING"), f"{where}: {actual}"
        if "range" in expected:
            low, high = expected["range"]
            assert low <= number(actual) <= high, f"{where}: {actual} not in {expected['range']}"
        else:
            assert re.fullmatch(expected["sval_re"], actual.get("sval", "")), f"{where}: {actual}"
        return
    assert actual == expected, f"{where}: {actual} != {expected}"


@pytest.fixture(scope="module")
def page_server():  # type: ignore[no-untyped-def]
    with PageServer({"/": colour_page((0, 160, 0))}) as server:
        yield server


@pytest.fixture(scope="module")
def results(folder, page_server, dao, stack):  # type: ignore[no-untyped-def]  # noqa: F811
    """case name → (filled case, WorkerRun, documents read back), every case run IN_FLIGHT at a time."""

    def one(path: Path) -> tuple[str, Any]:
        job_uuid = str(uuid.uuid4())
        case_folder = f"{folder}{path.stem}/"
        values = {
            "NS": NAMESPACE,
            "F_RE": re.escape(folder),
            "F": folder,
            "CASE": case_folder,
            "JOB": job_uuid,
            "HOST": HOSTNAME,
            "USER": USERNAME,
            "PAGE": page_server.url("/"),
            "ORIGIN": page_server.origin,
        }
        case = fill(path, values)
        if "chromium" in case.get("needs", []) and chromium.find_chromium() is None:
            return path.stem, (case, None, {})
        for doc in [case.get("stored_script"), *case.get("documents", [])]:
            if doc is not None:
                dao.docs.put_new(doc)
        job_id = ""
        if case.get("job") is not None:
            dao.docs.put_new(case["job"])
            job_id = case["job"]["object_id"]
        env = {"RUN_MODE": case["run_mode"], **case.get("env", {})}
        if case["run_mode"] == "REGISTER_ACTIONS":
            env.update(JOB_ID=None, USERNAME=None, DYNAMO_STREAMS_TABLE=None)
        proc = subprocess.run(
            [sys.executable, "-m", "src.worker"],
            cwd=ROOT,
            env=worker_env(stack, job_id, **env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        OUTPUTS.append(proc.stdout + proc.stderr)
        run = WorkerRun(proc.returncode, proc.stdout, proc.stderr, dao.docs.get(job_id) if job_id else None)
        read = {doc_id: dao.docs.get(doc_id) for doc_id in case["expect"].get("documents", {})}
        return path.stem, (case, run, read)

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return dict(pool.map(one, CASES))


@pytest.mark.parametrize("name", CASE_IDS)
def test_case(name: str, results, dao) -> None:  # type: ignore[no-untyped-def]
    case, run, read = results[name]
    if run is None:
        pytest.skip("chromium is not installed (test_scripts/ensure_chromium.sh)")
    expect = case["expect"]
    log = run.stdout[-3000:] + run.stderr[-2000:]
    if case["run_mode"] == "REGISTER_ACTIONS":
        assert run.code == 0, log
    else:
        job = run.job
        assert job is not None, log
        assert job["status"] == expect["status"], (job.get("error_message"), log)
        assert run.code == (0 if expect["status"] == "SUCCEEDED" else 1), log
        if "error" in expect:
            assert expect["error"] in job["error_message"]
        for node, want in expect.get("receipts", {}).items():
            receipt = job["receipts"][node]
            assert receipt.get("success") is True, receipt
            assert receipt.get("primary_output", "") == want["primary_output"], receipt
            assert set(receipt["outputs"]) == set(want["outputs"]), receipt
            for out, spec in want["outputs"].items():
                check_anytype(receipt["outputs"][out], spec, f"{name}: receipt {node}.{out}")
        for out, spec in expect.get("output", {}).items():
            check_anytype(job["output"].get(out), spec, f"{name}: output {out}")
        for field, value in expect.get("fields", {}).items():
            assert job.get(field) == value, (field, job.get(field))
        if expect.get("no_receipts"):
            assert not job.get("receipts"), job["receipts"]
    for key in expect.get("exists", []):
        assert dao.blobs.exists(key), key
    for doc_id, fields in expect.get("documents", {}).items():
        doc = read[doc_id]
        assert doc is not None, doc_id
        for field, value in fields.items():
            assert doc[field] == value, (doc_id, field, doc[field])
    for key, body in expect.get("objects", {}).items():
        stored = json.loads(dao.blobs.get_bytes(key))
        for action_id, entry in body.items():
            assert stored[action_id] == entry, action_id
