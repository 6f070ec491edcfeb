"""web.screenshot through ``python -m src.worker`` (RUN_ACTION and RUN_SCRIPT) against the local
stack, with a loopback page server that only ``SCREENSHOT_ALLOW_HOSTS`` lets through."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.protobuf import json_format

from feaas.objects import AnyType
from feaas.psee.values import from_any
from src.actions.web import chromium
from tests.support.scripts import NAMESPACE, action, job_item, script
from tests.support.webpages import PageServer, colour_page, read_png

pytestmark = pytest.mark.skipif(chromium.find_chromium() is None,
                                reason="chromium is not installed (test_scripts/ensure_chromium.sh)")

GREEN = (0, 160, 0)


def output(run: Any, name: str) -> Any:
    return from_any(json_format.ParseDict(run.job["output"][name], AnyType()))


def test_run_action_takes_a_screenshot_when_the_test_server_is_allowed(put_job, run_worker, user_storage,
                                                                       dao):
    with PageServer({"/": colour_page(GREEN)}) as server:
        job_id = put_job(job_item())
        run = run_worker(job_id, RUN_MODE="RUN_ACTION", ACTION_ID="web.screenshot.Screenshot",
                         ACTION_INPUT_JSON=json.dumps({"url": server.url("/"), "width": 640, "height": 360}),
                         SCREENSHOT_ALLOW_HOSTS=server.origin)
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.job["status"] == "SUCCEEDED"
    key = output(run, "dest_key")
    receipt = run.job["receipts"]["action"]  # upstream's interface: dest_key is a KEY, and the primary output
    assert receipt["outputs"]["dest_key"]["ptype"] == "KEY" and receipt["primary_output"] == "dest_key"
    assert re.fullmatch(re.escape(NAMESPACE) + r"screenshots/[0-9-]+-at-[0-9-]+-[0-9a-f]{4}\.png", key)
    width, height, rows = read_png(user_storage.get_bytes(key))
    assert (width, height) == (640, 360) and rows[180][320] == GREEN
    head = dao.blobs.client.head_object(Bucket=dao.blobs.bucket, Key=key)
    assert head["ContentType"] == "image/png" and head["Metadata"] == {"url": server.url("/")}
    assert any(line.get("event") == "screenshot_taken" for line in run.lines)


@pytest.mark.parametrize("inputs, allow, says", [
    ({"url": "{server}"}, False, "destination not allowed: 127.0.0.1 (127.0.0.1, loopback)"),
    ({"url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}, True,
     "destination not allowed: 169.254.169.254 (169.254.169.254, link-local)"),
    ({"url": "{server}", "width": 5000}, True, "width must be between 51 and 1919 pixels, got 5000"),
    ({"url": "file:///etc/passwd"}, True, "url scheme 'file' is not allowed"),
])
def test_run_action_refusals_are_recorded_failures_and_the_server_gets_nothing(put_job, run_worker, inputs,
                                                                              allow, says):
    with PageServer({"/": colour_page(GREEN)}) as server:
        given = {k: (server.url("/") if v == "{server}" else v) for k, v in inputs.items()}
        job_id = put_job(job_item())
        run = run_worker(job_id, RUN_MODE="RUN_ACTION", ACTION_ID="web.screenshot",
                         ACTION_INPUT_JSON=json.dumps(given),
                         SCREENSHOT_ALLOW_HOSTS=server.origin if allow else None)
    assert run.code == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.job["status"] == "FAILED" and says in run.job["error_message"], run.job["error_message"]
    assert server.connections == 0
    assert "Traceback" not in run.stdout + run.stderr


def test_a_script_node_with_the_legacy_id_uses_the_declared_defaults(put_job, run_worker, user_storage):
    with PageServer({"/": colour_page(GREEN)}) as server:
        s = script([action("shot", "src.actions.web.screenshot.Screenshot", url=server.url("/"), height=120)],
                   ["shot:dest_key -> mainOutput:key"])
        job_id = put_job(job_item(s))
        run = run_worker(job_id, SCREENSHOT_ALLOW_HOSTS=server.origin)
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    key = output(run, "key")
    assert key.startswith(NAMESPACE + "screenshots/")  # {hostname}/{username} expanded
    width, height, _ = read_png(user_storage.get_bytes(key))
    assert (width, height) == (1200, 120)  # width: the declared default
