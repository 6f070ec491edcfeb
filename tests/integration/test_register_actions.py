"""RUN_MODE=REGISTER_ACTIONS through ``python -m src.worker`` on the local stack (issue 12 item 5):
the two S3 objects and the two documents of LEGACY_ACTIONS.md §3, read back field by field."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from feaas.dao import Dao
from src.actions import default_registry
from tests.conftest import worker_env

HOST = "plus_compat_example_com"
ENTRY_FIELDS = ["action_id", "runtime", "class_path", "label", "short_desc", "params", "outputs", "sys_name"]


@pytest.fixture(scope="module")
def registered(stack, dao: Dao) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.conftest import OUTPUTS, ROOT

    before = int(time.time() * 1000)
    env = worker_env(
        stack,
        "unused",
        RUN_MODE="REGISTER_ACTIONS",
        JOB_ID=None,
        USERNAME=None,
        DYNAMO_STREAMS_TABLE=None,
        HOSTNAME="ip-10-0-0-1.ec2.internal",
        PLUS_HOSTNAME=HOST,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "src.worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    OUTPUTS.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"before": before, "after": int(time.time() * 1000), "stdout": proc.stdout}


def test_both_objects_hold_every_action_under_its_legacy_and_new_id(registered, dao: Dao) -> None:  # type: ignore[no-untyped-def]
    body = dao.blobs.get_bytes("sys/actions/plus-worker/actions.json")
    assert dao.blobs.get_bytes(f"sys/{HOST}/plusworker/plus-worker/actions.json") == body
    head = dao.blobs.client.head_object(Bucket=dao.blobs.bucket, Key="sys/actions/plus-worker/actions.json")
    assert head["ContentType"] == "application/json"
    actions = json.loads(body)
    registry = default_registry()
    legacy = {a.id for a in registry.legacy_actions()}
    assert len(legacy) == 24
    assert set(actions) == legacy | {a.id for a in registry.actions()}
    for action_id, entry in actions.items():
        assert list(entry) == ENTRY_FIELDS, action_id
        assert entry["action_id"] == action_id
        assert (entry["runtime"], entry["sys_name"], entry["short_desc"]) == ("fargate", "plus-worker", "")
    for action_id in legacy:
        assert action_id.startswith("src.actions.")
        assert actions[action_id]["class_path"] == action_id
        assert actions[action_id]["label"] == action_id.rpartition(".")[2]
    assert actions["vendor.ffmpeg.thumbnail"]["class_path"] == "vendor.ffmpeg.thumbnail"
    assert actions["vendor.ffmpeg.thumbnail"]["label"] == "Thumbnail"


def test_legacy_entries_are_plus_engine_parameter_json(registered, dao: Dao) -> None:  # type: ignore[no-untyped-def]
    actions = json.loads(dao.blobs.get_bytes("sys/actions/plus-worker/actions.json"))
    thumb = actions["src.actions.vendor.ffmpeg.thumbnail.Thumbnail"]
    assert thumb == {
        "action_id": "src.actions.vendor.ffmpeg.thumbnail.Thumbnail",
        "runtime": "fargate",
        "class_path": "src.actions.vendor.ffmpeg.thumbnail.Thumbnail",
        "label": "Thumbnail",
        "short_desc": "",
        "params": [
            {"var_name": "file"},  # STRING: ptype omitted; required: no "optional"
            {"var_name": "at_sec", "ptype": "FLOAT", "ddefault": 0.0, "optional": True},
            {"var_name": "format", "sdefault": "jpg", "optional": True},
            {
                "var_name": "max_width_px",
                "ptype": "INTEGER",
                "hint": "0 = the video's own width",
                "idefault": "0",
                "optional": True,
            },  # int64 as a string
        ],
        "outputs": [{"var_name": "file"}],
        "sys_name": "plus-worker",
    }
    screenshot = actions["src.actions.web.screenshot.Screenshot"]
    width = next(p for p in screenshot["params"] if p["var_name"] == "width")
    assert width["ptype"] == "INTEGER" and width["idefault"] == "1200"
    assert width["validations"] == [
        {"vtype": "GREATER_THAN", "ival": "50"},
        {"vtype": "LESS_THAN", "ival": "1920"},
    ]
    assert screenshot["outputs"] == [{"var_name": "dest_key", "ptype": "KEY"}]
    nap = actions["src.actions.sys.debug.nap.Nap"]
    assert [o["var_name"] for o in nap["outputs"]] == ["slept_seconds", "message"]
    thumbs = actions["src.actions.vendor.ffmpeg.thumbnails.Thumbnails"]
    ext = next(p for p in thumbs["params"] if p["var_name"] == "thumbnail_ext")
    assert ext["ptype"] == "FIXED_LIST_SINGLE_SELECT"
    assert {"label": ".png", "value": ".png"} in ext["svals"]
    assert {o["var_name"]: o.get("ptype", "STRING") for o in thumbs["outputs"]} == {
        "thumbnails_created": "INTEGER",
        "dest_prefix": "PREFIX",
    }


def test_both_documents_point_at_the_objects(registered, dao: Dao) -> None:  # type: ignore[no-untyped-def]
    count = len(json.loads(dao.blobs.get_bytes("sys/actions/plus-worker/actions.json")))
    front = dao.docs.get(f"sys.{HOST}.plusworker.plus-worker")
    engine = dao.docs.get("sys.actions.plus-worker.plus-worker")
    assert front is not None and engine is not None
    assert (
        set(front)
        == set(engine)
        == {"object_id", "owner", "source", "actions_s3_key", "actions_count", "last_updated_at"}
    )
    assert front["owner"] == f"sys.{HOST}.plusworker"
    assert front["actions_s3_key"] == f"sys/{HOST}/plusworker/plus-worker/actions.json"
    assert engine["owner"] == "sys.actions.plus-worker"
    assert engine["actions_s3_key"] == "sys/actions/plus-worker/actions.json"
    for doc in (front, engine):
        assert doc["source"] == "plus-worker"
        assert doc["actions_count"] == count
        assert registered["before"] <= doc["last_updated_at"] <= registered["after"]
    # the container's own HOSTNAME lost to PLUS_HOSTNAME: nothing published under it
    assert dao.docs.get("sys.ip-10-0-0-1.ec2.internal.plusworker.plus-worker") is None


def test_needs_no_job_but_its_own_settings(stack) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = worker_env(
        stack,
        "unused",
        RUN_MODE="REGISTER_ACTIONS",
        JOB_ID=None,
        USERNAME=None,
        PRIMARY_BUCKET=None,
        DYNAMO_TABLE=None,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "src.worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "DYNAMO_TABLE: missing" in proc.stderr and "PRIMARY_BUCKET: missing" in proc.stderr
    assert "JOB_ID" not in proc.stderr and "USERNAME" not in proc.stderr
