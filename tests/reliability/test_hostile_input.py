"""A catalogue of hostile and malformed inputs, each run through ``python -m src.worker``.

Every case states what the worker must do with it: the exit code of SPEC §1.2, a message a user
can act on (checked for its content), a job that ends FAILED with ``error_message`` whenever a job
could be recorded (never left INITIALIZING or RUNNING), and no traceback anywhere in the output.
Cases with exit 2 (configuration) or 3 (not claimable) must leave the job exactly as it was.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from feaas.objects import Parameter
from feaas.objects import ParameterType as PT
from tests.reliability.prefetch import Prefetch, run_worker_now, selected
from tests.support.scripts import NAMESPACE, NT, action, job_item, node, script, static

Env = dict[str, Any]
Build = Callable[[], tuple[dict[str, Any] | None, Env]]  # (job item to store, or None; worker env)
MAX_MESSAGE = 4000  # a message a user can read, and that fits the job document
MEDIA = f"{NAMESPACE}hostile-media/"
CLIP, LOGO = f"{MEDIA}clip.mp4", f"{MEDIA}logo.png"
LAVFI_NAME = "hostile-media/-f lavfi -i anullsrc.wav"


@dataclass(frozen=True)
class Case:
    id: str
    build: Build
    code: int
    says: tuple[str, ...] = ()  # fragments of the message (error_message, or the output for exit 2/3/70)
    check: Callable[[Any], None] | None = None  # extra assertions on the WorkerRun
    timeout: float = 60
    tags: tuple[str, ...] = field(default_factory=tuple)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def echo_job(**extra: Any) -> dict[str, Any]:
    """A job that succeeds quickly: mainInput:v → echo → mainOutput:v."""
    return job_item(script([action("echo", "sys.debug.echo")],
                           ["mainInput:v -> echo:v", "echo:v -> mainOutput:v"]),
                    **extra)


def with_script(mutate: Callable[[dict[str, Any]], None], **extra: Any) -> Build:
    def build() -> tuple[dict[str, Any], Env]:
        item = echo_job(input_data={"v": 1}, **extra)
        mutate(item)
        return item, {}
    return build


def job(**attrs: Any) -> Build:
    """The echo job with top-level attributes set (or replaced) to hostile values."""
    return lambda: ({**echo_job(input_data={"v": 1}), **attrs}, {})


def run_mode(mode: str, **attrs: Any) -> Build:
    return lambda: ({**echo_job(input_data={"v": 1}), **attrs}, {"RUN_MODE": mode})


def env(**variables: Any) -> Build:
    return lambda: (echo_job(input_data={"v": 1}), variables)


def act(action_id: str, inputs: Any = None, raw: str | None = None) -> Build:
    """RUN_ACTION with ``inputs`` as ACTION_INPUT_JSON (or the raw text ``raw``)."""
    text = raw if raw is not None else json.dumps(inputs if inputs is not None else {})
    return lambda: (job_item(), {"RUN_MODE": "RUN_ACTION", "ACTION_ID": action_id, "ACTION_INPUT_JSON": text})


def typed(ptype: int, value: Any) -> Build:
    """A script input declared with ``ptype`` given ``value`` in input_data."""
    def build() -> tuple[dict[str, Any], Env]:
        s = script([action("echo", "sys.debug.echo")], ["mainInput:v -> echo:v", "echo:v -> mainOutput:v"],
                   inputs=[Parameter(var_name="v", ptype=ptype)])
        return job_item(s, input_data={"v": value}), {}
    return build


def scripted(nodes: list[Any], links: list[str] = (), **extra: Any) -> Build:  # type: ignore[assignment]
    return lambda: (job_item(script(nodes, links), **extra), {})


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# --- extra checks -----------------------------------------------------------------------------------

def succeeded_with(name: str, expected: Callable[[dict[str, Any]], bool]) -> Callable[[Any], None]:
    def check(run: Any) -> None:
        assert run.job["status"] == "SUCCEEDED", run.job.get("error_message")
        assert expected(run.job["output"][name]), run.job["output"][name]
    return check


def nothing_ran(run: Any) -> None:
    assert not run.job.get("receipts"), run.job.get("receipts")


def node_failed(run: Any) -> None:
    receipt = run.job["receipts"]["action"]
    assert not receipt.get("success") and receipt.get("error_message")


def too_many_nodes() -> tuple[dict[str, Any], Env]:
    """10,000 nodes, 600 of them actions: refused by the 500-action limit, and quickly."""
    s = script([action(f"a{i}", "sys.debug.echo") for i in range(600)] +
               [node(f"t{i}", NT.TEST) for i in range(9400)])
    item = job_item(s)
    for n in item["script"]["nodes"]:
        n.pop("label", None)
    return item, {}


def ten_thousand_inert_nodes() -> tuple[dict[str, Any], Env]:
    s = script([node(f"t{i}", NT.TEST) for i in range(9999)] + [static("s", "done")],
               ["s:value -> mainOutput:v"])
    return job_item(s), {}


def big_label() -> tuple[dict[str, Any], Env]:
    return echo_job(input_data={"v": 1}, label="L" * 300_000), {}


def big_input() -> tuple[dict[str, Any], Env]:
    return echo_job(input_data={"v": "x" * 300_000}), {}


def big_action_input() -> tuple[dict[str, Any], Env]:
    return act("sys.debug.echo", {"v": "y" * 120_000})()


def deep_input_data() -> tuple[dict[str, Any], Env]:
    """DynamoDB stores at most 32 levels of maps and lists; 500 levels arrive as JSON text."""
    s = script([action("echo", "sys.debug.echo")], ["mainInput:v -> echo:v", "mainInput:w -> echo:w",
                                                    "echo:v -> mainOutput:v"],
               inputs=[Parameter(var_name="v", ptype=PT.JSON), Parameter(var_name="w", ptype=PT.JSON)])
    return job_item(s, input_data={"v": json.dumps(nested(500)), "w": nested(30)}), {}


def wrong_user_owner() -> tuple[dict[str, Any], Env]:
    item = echo_job(input_data={"v": 1})
    item.pop("username")
    return item, {"USERNAME": "mallory@example.com"}


def missing_job() -> tuple[None, Env]:
    return None, {}


def finished_job() -> tuple[dict[str, Any], Env]:
    return {**echo_job(input_data={"v": 1}), "status": "SUCCEEDED"}, {}


def set_path(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """``set_path("script.nodes.0.unique_id", 5)``."""
    def mutate(item: dict[str, Any]) -> None:
        target: Any = item
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


def bucket_missing() -> tuple[dict[str, Any], Env]:
    item, env_vars = act("sys.blob.put_text", {"key": f"{NAMESPACE}{unique('nobucket')}.txt", "text": "x"})()
    return item, {**env_vars, "PRIMARY_BUCKET": "no-such-bucket-here"}


def streams_table_missing() -> tuple[dict[str, Any], Env]:
    owner = f"{NAMESPACE}collection-{uuid.uuid4().hex[:8]}"
    return (echo_job(input_data={"v": 1}, collection_owner=owner),
            {"RUN_MODE": "RUN_COLLECTION", "DYNAMO_STREAMS_TABLE": "no-such-streams-table"})


def media_key(name: str) -> Build:
    def build() -> tuple[dict[str, Any], Env]:
        return act("vendor.ffmpeg.probe", {"key": f"{NAMESPACE}{name}"})()
    return build


CASES: list[Case] = [
    # --- ACTION_INPUT_JSON ------------------------------------------------------------------------
    Case("input-json-broken", act("sys.math.add", raw="{not json"), 1,
         ("ACTION_INPUT_JSON is not valid JSON",)),
    Case("input-json-array", act("sys.math.add", raw="[1, 2]"), 1,
         ("ACTION_INPUT_JSON must be a JSON object", "list")),
    Case("input-json-number", act("sys.math.add", raw="42"), 1,
         ("ACTION_INPUT_JSON must be a JSON object", "int")),
    Case("input-json-empty-text", act("sys.math.add", raw="   "), 1,
         ("ACTION_INPUT_JSON is not valid JSON",)),
    Case("input-json-nested-10k", act("sys.debug.echo", raw='{"v": ' + "[" * 10_000 + "]" * 10_000 + "}"), 1,
         ("ACTION_INPUT_JSON", "nested too deeply")),
    Case("input-json-nested-500", act("sys.debug.echo", {"v": nested(500)}), 0,
         check=succeeded_with("v", lambda v: v["ptype"] == "JSON" and v["sval"].startswith("[[[["))),
    Case("input-json-infinity", act("sys.debug.nap", raw='{"seconds": Infinity}'), 1,
         ("seconds must be between 0 and 3600", "inf")),
    Case("input-json-nan", act("sys.debug.nap", raw='{"seconds": NaN}'), 1,
         ("seconds must be between 0 and 3600",)),
    Case("input-json-lone-surrogate", act("sys.debug.echo", raw='{"v": "\\ud800"}'), 1,
         ("ACTION_INPUT_JSON is not valid Unicode text",)),
    Case("input-json-nul-in-key", act("sys.blob.get_text", {"key": f"{NAMESPACE}a\u0000b"}), 1,
         ("control characters",), check=node_failed),
    Case("input-json-120kb-value", big_action_input, 0,
         check=succeeded_with("v", lambda v: v["ptype"] == "KEY" and v["sval"].startswith(NAMESPACE))),
    # --- wrong types in the job document ---------------------------------------------------------
    Case("script-as-string", job(script="print('hi')"), 1,
         ("invalid job document", "script", "must be a map")),
    Case("nodes-as-dict", with_script(set_path("script.nodes", {"a": {"unique_id": "a"}})), 1,
         ("invalid job document", "nodes", "must be a list")),
    Case("links-as-number", with_script(set_path("script.links", 7)), 1, ("invalid job document", "links")),
    Case("node-unique-id-number", with_script(set_path("script.nodes.0.unique_id", 5)), 1,
         ("invalid job document", "unique_id")),
    Case("node-as-string", with_script(set_path("script.nodes.0", "echo")), 1,
         ("invalid job document", "nodes[0]", "must be a map")),
    Case("label-as-map", job(label={"text": "hello"}), 1, ("invalid job document", "label")),
    Case("label-as-300kb-map", job(label={"text": "M" * 300_000}), 1, ("invalid job document", "label")),
    Case("created-at-yesterday", job(created_at="yesterday"), 1, ("invalid job document", "created_at")),
    Case("registers-as-list", job(registers=["a", "b"]), 1,
         ("invalid job document", "registers", "must be a map")),
    Case("input-data-as-list", job(input_data=[1, 2, 3]), 1, ("input_data must be a map",)),
    Case("input-data-as-text", job(input_data="v=1"), 1, ("input_data must be a map",)),
    Case("status-as-map", job(status={"name": "RUNNING"}), 3, ("unrecognised status",)),
    Case("status-paused", job(status="PAUSED"), 3, ("unrecognised status", "PAUSED")),
    Case("status-number-7", job(status=7), 3, ("unrecognised status", "7")),
    Case("request-cancel-yes-please", job(request_cancel="yes please"), 1,
         ("invalid job document", "request_cancel")),
    Case("timeout-soon", job(timeout_seconds="soon"), 1, ("timeout_seconds", "soon")),
    Case("timeout-negative", job(timeout_seconds=-5), 1, ("timeout_seconds", "-5")),
    Case("timeout-as-map", job(timeout_seconds={"s": 5}), 1, ("timeout_seconds",)),
    Case("tolerated-lots", run_mode("RUN_COLLECTION", tolerated_failure_percent="lots",
                                     collection_owner=f"{NAMESPACE}collection-none"), 1,
         ("tolerated_failure_percent", "lots")),
    Case("tolerated-150", job(tolerated_failure_percent=150), 1, ("tolerated_failure_percent", "150")),
    Case("file-keys-as-string", run_mode("RUN_FILES", file_keys=f"{NAMESPACE}a.txt"), 1,
         ("file_keys must be a list",)),
    Case("collection-owner-number", run_mode("RUN_COLLECTION", collection_owner=12345), 1,
         ("collection_owner", "must be text")),
    Case("stream-id-as-list", run_mode("RUN_STREAM", stream_id=["a"]), 1, ("stream_id", "must be text")),
    Case("job-type-teleport", run_mode("RUN_JOB", job_type="teleport"), 1, ("unknown job_type 'teleport'",)),
    Case("job-type-huge", run_mode("RUN_JOB", job_type="j" * 200_000), 1, ("unknown job_type",)),
    Case("hostname-dotdot", job(hostname=".."), 1, ("no usable hostname",)),
    Case("hostname-number", job(hostname=42), 1, ("hostname",)),
    # --- huge values ----------------------------------------------------------------------------------
    Case("label-300kb", big_label, 0, check=succeeded_with("v", lambda v: v.get("ival") == "1")),
    Case("input-value-300kb", big_input, 0,
         check=succeeded_with("v", lambda v: v["ptype"] == "KEY" and v["sval"].startswith(NAMESPACE))),
    # --- deep nesting ---------------------------------------------------------------------------------
    Case("input-data-nested-500", deep_input_data, 0,
         check=succeeded_with("v", lambda v: v["ptype"] == "JSON" and v["sval"].count("[") == 500)),
    # --- unknown enum names, graph problems -------------------------------------------------------
    Case("ntype-teleport", with_script(set_path("script.nodes.0.ntype", "TELEPORT")), 1,
         ("invalid job document", "ntype", "TELEPORT")),
    Case("ntype-number-99", with_script(set_path("script.nodes.0.ntype", 99)), 1,
         ("invalid script", "unknown type 99")),
    Case("ptype-quantum", with_script(lambda item: item["script"].update(
        inputs=[{"var_name": "v", "ptype": "QUANTUM"}])), 0,
         check=succeeded_with("v", lambda v: v.get("sval") == "1" or v.get("ival") == "1")),
    Case("cycle",
         scripted([action(n, "sys.debug.echo") for n in ("a", "b", "c")],
                  ["a:x -> b:x", "b:x -> c:x", "c:x -> a:x"]), 1,
         ("invalid script", "cycle: ", "a", "b", "c"),
         check=nothing_ran),
    Case("self-loop", scripted([action("a", "sys.math.add", b=1)], ["a:sum -> a:a"]), 1, ("cycle: a → a",),
         check=nothing_ran),
    Case("reserved-and-duplicate-ids",
         scripted([action("mainInput", "sys.debug.echo"), action("x", "sys.debug.echo"),
                   action("x", "sys.debug.echo"), node("", NT.STATIC)]), 1,
         ("node id 'mainInput' is reserved", "node id 'x' is used twice", "has no unique_id")),
    Case("10000-nodes-600-actions", too_many_nodes, 1, ("the script has 600 actions; the limit is 500",),
         check=nothing_ran),
    Case("10000-inert-nodes", ten_thousand_inert_nodes, 0,
         check=succeeded_with("v", lambda v: v["sval"] == "done")),
    # --- values that fail conversion to the declared ptype -----------------------------------------
    Case("integer-abc", typed(PT.INTEGER, "abc"), 1, ("script input 'v' expects INTEGER", "'abc'")),
    Case("float-nan", typed(PT.FLOAT, "NaN"), 1, ("script input 'v' expects FLOAT", "not a finite number")),
    Case("float-inf", typed(PT.FLOAT, "inf"), 1, ("expects FLOAT", "not a finite number")),
    Case("boolean-maybe", typed(PT.BOOLEAN, "maybe"), 1, ("expects BOOLEAN", "'maybe'")),
    Case("json-open-brace", typed(PT.JSON, "{"), 1, ("expects JSON", "not valid JSON")),
    Case("json-text-nested-10k", typed(PT.JSON, "[" * 10_000 + "]" * 10_000), 1,
         ("expects JSON", "nested too deeply")),
    Case("register-json-nested-10k",
         job(registers={"old:v": {"ptype": "JSON", "sval": "[" * 10_000 + "]" * 10_000}}),
         0, check=succeeded_with("v", lambda v: v.get("ival") == "1")),
    Case("list-of-nested-objects", typed(PT.LIST, [{"a": {"b": [1, 2]}}]), 0,
         check=succeeded_with("v", lambda v: v["svals"] == ['{"a": {"b": [1, 2]}}'])),
    Case("string-map-list", typed(PT.STRING_MAP, "[1]"), 1, ("expects STRING_MAP", "not a map")),
    Case("receipt-garbage-bytes", typed(PT.RECEIPT, b"\xff\xfe\xfd garbage \x00\x01"), 1,
         ("expects RECEIPT", "not a serialised receipt")),
    Case("receipt-text", typed(PT.RECEIPT, "a receipt, honest"), 1, ("expects RECEIPT", "not a receipt")),
    Case("datetime-yesterday", typed(PT.DATETIME, "yesterday"), 1, ("expects DATETIME", "'yesterday'")),
    Case("bytes-number", typed(PT.BYTES, 12), 1, ("expects BYTES",)),
    Case("action-input-float-soon", act("sys.debug.nap", {"seconds": "soon"}), 1,
         ("node 'action'", "input 'seconds' expects FLOAT", "'soon'"), check=node_failed),
    # --- identity ---------------------------------------------------------------------------------------
    Case("username-mismatch", env(USERNAME="mallory@example.com"), 1, ("username mismatch",),
         check=nothing_ran),
    Case("owner-names-another-user", wrong_user_owner, 1, ("username mismatch", "alice@example.com"),
         check=nothing_ran),
    Case("job-not-found", missing_job, 3, ("not found",)),
    Case("job-already-finished", finished_job, 3, ("already finished (SUCCEEDED)",)),
    # --- missing tables and bucket ------------------------------------------------------------------
    # configuration (issue 11): exit 2 before the claim, the job untouched
    Case("documents-table-missing", env(DYNAMO_TABLE="does-not-exist"), 2,
         ("DYNAMO_TABLE='does-not-exist' does not exist", "ResourceNotFoundException")),
    Case("bucket-missing", bucket_missing, 2, ("PRIMARY_BUCKET='no-such-bucket-here' does not exist",)),
    Case("streams-table-missing", streams_table_missing, 2,
         ("DYNAMO_STREAMS_TABLE='no-such-streams-table'",)),
    # --- keys that try to leave the namespace -------------------------------------------------------
    Case("key-dotdot", act("sys.blob.get_text", {"key": f"{NAMESPACE}../../etc/passwd"}), 1,
         ("outside your namespace",), check=node_failed),
    Case("key-absolute", act("sys.blob.put_text", {"key": "/etc/passwd", "text": "x"}), 1,
         ("outside your namespace",), check=node_failed),
    Case("key-other-user", act("sys.blob.get_text", {"key": "plus_example_com/bob@example.com/notes.txt"}), 1,
         ("outside your namespace",), check=node_failed),
    Case("key-as-object", act("sys.blob.get_text", {"key": {"Bucket": "other", "Key": "x"}}), 1,
         ("outside your namespace",), check=node_failed),
    # --- action ids naming Python code --------------------------------------------------------------
    *[Case(f"action-id-{name}", act(name, {"command": "touch /tmp/pwned"}), 1,
           (f"unknown action id {name!r}",))
      for name in ("os.system", "subprocess.Popen", "builtins.eval", "src.worker.main", "feaas.dao.Dao",
                   "__import__", "src.actions.dataset.__builtins__", "../../bin/sh")],
    Case("script-action-id-os-system", scripted([action("a", "os.system", command="id")]), 1,
         ("unknown action id 'os.system'",), check=nothing_ran),
    # --- ffmpeg argument injection ------------------------------------------------------------------
    Case("ffmpeg-start-shell",
         act("vendor.ffmpeg.trim", {"key": f"{NAMESPACE}in.mp4", "start": "0; rm -rf /"}), 1,
         ("input 'start' expects FLOAT",), check=node_failed),
    Case("ffmpeg-key-dash-i", act("vendor.ffmpeg.trim", {"key": "-i /etc/passwd", "start": 1}), 1,
         ("outside your namespace",), check=node_failed),
    Case("ffmpeg-key-lavfi-missing", media_key("-f lavfi -i anullsrc"), 1, ("input not found",),
         check=node_failed),
    Case("ffmpeg-key-lavfi-garbage", media_key(LAVFI_NAME), 1, ("vendor.ffmpeg.probe",), check=node_failed,
         tags=("media",)),
    Case("ffmpeg-position-filter", act("vendor.ffmpeg.overlay", {
        "key": CLIP, "overlay_key": LOGO, "position": "0:0,movie=/etc/passwd"}), 1,
         ("position must be one of",), check=node_failed, tags=("media",)),
    Case("ffmpeg-dest-key-option",
         act("vendor.ffmpeg.trim", {"key": CLIP, "duration": 0.2, "dest_key": "-y"}), 1,
         ("outside your namespace",), check=node_failed, tags=("media",)),
    # --- template injection -------------------------------------------------------------------------
    Case("format-attribute", act("sys.text.format", {"template": "{values.__class__}", "values": {"a": 1}}),
         1,
         ("must be a plain name",), check=node_failed),
    Case("format-index-init", act("sys.text.format", {"template": "{0.__init__}", "values": {"a": 1}}), 1,
         ("must be a plain name",), check=node_failed),
    Case("format-huge-width", act("sys.text.format", {"template": "{a:>999999999}", "values": {"a": 1}}), 1,
         ("width or precision",), check=node_failed),
    # --- invalid configuration: exit 2, nothing written ---------------------------------------------
    Case("concurrency-0", env(CONCURRENCY="0"), 2, ("CONCURRENCY",)),
    Case("concurrency-100000", env(CONCURRENCY="100000"), 2, ("CONCURRENCY",)),
    Case("concurrency-x", env(CONCURRENCY="x"), 2, ("CONCURRENCY",)),
    Case("heartbeat-negative", env(HEARTBEAT_SECONDS="-1"), 2, ("HEARTBEAT_SECONDS",)),
    Case("shard-5-of-2", env(SHARD_INDEX="5", SHARD_COUNT="2"), 2,
         ("SHARD_INDEX: must be smaller than SHARD_COUNT",)),
    Case("run-mode-run-all", env(RUN_MODE="RUN_ALL"), 2, ("RUN_MODE",)),
    Case("run-action-without-id", env(RUN_MODE="RUN_ACTION"), 2, ("ACTION_ID: required for RUN_ACTION",)),
    Case("access-key-without-secret", env(SECRET_KEY=None), 2,
         ("ACCESS_KEY/SECRET_KEY: set both or neither",)),
    Case("several-bad-variables", env(CONCURRENCY="many", LEASE_SECONDS="-3", LOG_LEVEL="LOUD", REGION=""), 2,
         ("CONCURRENCY", "LEASE_SECONDS", "LOG_LEVEL", "REGION")),
]

UNTOUCHED_CODES = (2, 3, 70)  # the job must be exactly as stored


@pytest.fixture(scope="module")
def hostile_media(dao, tmp_path_factory) -> None:
    """A real tiny clip and logo (made by ffmpeg from its test source), and garbage under a key that
    reads like ffmpeg options, in alice's namespace."""
    work = tmp_path_factory.mktemp("hostile-media")
    clip, logo = work / "clip.mp4", work / "logo.png"
    for args in (["-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-t", "0.5", "-pix_fmt", "yuv420p",
                  str(clip)],
                 ["-f", "lavfi", "-i", "testsrc=size=16x16", "-frames:v", "1", str(logo)]):
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True, timeout=60)
    dao.blobs.put_bytes(CLIP, clip.read_bytes(), "video/mp4")
    dao.blobs.put_bytes(LOGO, logo.read_bytes(), "image/png")
    dao.blobs.put_bytes(f"{NAMESPACE}{LAVFI_NAME}", b"-f lavfi -i anullsrc \x00\xff not media", "audio/wav")


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, stack, dao) -> Iterator[Prefetch]:
    """Every selected case's worker run, a few at a time (see ``prefetch``): ``(job before, WorkerRun)``."""
    cases = selected(request, "case")
    if any("media" in c.tags for c in cases):
        request.getfixturevalue("hostile_media")

    def run(case: Case) -> tuple[dict[str, Any] | None, Any]:
        item, variables = case.build()
        if item is not None:
            dao.docs.put_new(item)
        job_id = item["object_id"] if item is not None else f"{NAMESPACE}job.{uuid.uuid4()}"
        before = dao.docs.get(job_id)
        return before, run_worker_now(stack, dao, job_id, timeout=case.timeout, **variables)

    prefetch = Prefetch(cases, lambda c: c.id, run)
    yield prefetch
    prefetch.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, runs: Prefetch, report) -> None:
    report.add(bad_inputs_tried=1)

    before, run = runs.get(case)

    output = run.stdout + run.stderr
    assert "Traceback" not in output, output[-4000:]
    assert run.code == case.code, (run.code, output[-4000:], (run.job or {}).get("error_message"))
    if case.code in UNTOUCHED_CODES:
        assert run.job == before  # nothing written
        message = output
    else:
        job = run.job
        assert job is not None
        assert job["status"] == ("SUCCEEDED" if case.code == 0 else "FAILED"), job.get("error_message")
        assert "lease_owner" not in job and job.get("completed_at")
        message = job.get("error_message", "")
        if case.code == 1:
            assert message and len(message) <= MAX_MESSAGE, message[:300]
            finished = run.events("job_finished")
            assert finished and finished[-1]["status"] == "FAILED"
    for fragment in case.says:
        assert fragment in message, (fragment, message[-2000:])
    if case.check is not None:
        case.check(run)
    report.add(bad_inputs_handled=1)
