"""The complete script engine through ``python -m src.worker`` against DynamoDB Local and SeaweedFS."""

from __future__ import annotations

import json
import time
import uuid

from feaas.dao import BlobNotFound
from feaas.dao.codec import message_to_plain
from feaas.dao.offload import JobValues
from feaas.jobs.document import parse_job
from feaas.objects import DestinationType, Receipt
from feaas.psee.values import from_any, from_any_map, to_any, to_any_map
from tests.support.scripts import NAMESPACE, NT, action, job_item, node, script, static

BOB = "plus_example_com/bob@example.com/"
ITEM_LIMIT = 400 * 1024


def item_size(item: dict) -> int:
    """Serialized size of a stored job item (JSON of the plain item; DynamoDB's own count is smaller)."""
    return len(json.dumps(item, default=str).encode("utf-8"))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def test_error_branch_keeps_the_job_successful(put_job, run_worker):
    # Given a failing action whose receipt feeds a RECEIPT_META node
    s = script([action("boom", "sys.debug.fail", message="no disk"), node("meta", NT.RECEIPT_META)],
               ["boom:receipt -> meta:receipt", "meta:success -> mainOutput:ok",
                "meta:error_message -> mainOutput:why"])
    # When the worker runs it
    run = run_worker(put_job(job_item(s)))
    # Then the job SUCCEEDED and the branch reported the failure
    assert run.code == 0, run.stdout + run.stderr
    job = run.job
    assert job["status"] == "SUCCEEDED" and "error_message" not in job
    assert job["output"]["ok"] == {"ptype": "BOOLEAN"} and job["output"]["why"]["sval"] == "no disk"
    assert job["receipts"]["boom"]["error_message"] == "no disk"


def test_conditional_false_skips_the_node_and_what_only_it_feeds(put_job, run_worker, dao):
    key = f"{NAMESPACE}{unique('skipped')}.txt"
    s = script([action("write", "sys.blob.put_text", key=key, text="x"), action("after", "sys.debug.echo"),
                action("other", "sys.math.add")],
               ["write:key -> after:k", "mainInput:n -> other:a", "mainInput:n -> other:b",
                "other:sum -> mainOutput:sum"])
    s.nodes[0].conditional.source, s.nodes[0].conditional.sourceHandle = "mainInput", "go"
    run = run_worker(put_job(job_item(s, input_data={"go": "false", "n": 2})))
    assert run.code == 0, run.stdout
    assert set(run.job["receipts"]) == {"other"} and run.job["output"]["sum"]["ival"] == "4"
    assert not dao.blobs.exists(key)


def test_writer_to_file_and_stream(put_job, run_worker, dao):
    prefix = f"{NAMESPACE}{unique('out')}/"
    stream_id = f"{NAMESPACE}{unique('stream')}"
    s = script([static("text", "hello writer"),
                node("wf", NT.WRITER, dest_prefix=prefix, dest_extension="md"),
                node("ws", NT.WRITER, dest_destination=DestinationType.STREAM, dest_stream_id=stream_id)],
               ["text:value -> wf:data", "text:value -> ws:data", "wf:key -> mainOutput:key",
                "ws:key -> mainOutput:stream"])
    run = run_worker(put_job(job_item(s)))
    assert run.code == 0, run.stdout
    key = run.job["output"]["key"]["sval"]
    assert key.startswith(prefix + "wf-") and key.endswith(".md")
    assert dao.blobs.get_bytes(key) == b"hello writer"
    rows = list(dao.streams.rows(stream_id))
    assert len(rows) == 1 and rows[0]["data"] == "hello writer" and rows[0]["node"] == "ws"
    assert rows[0]["job_id"] == run.job["object_id"]


def test_writer_outside_the_namespace_fails_the_node(put_job, run_worker, dao):
    s = script([static("text", "x"), node("wf", NT.WRITER, dest_prefix=BOB)], ["text:value -> wf:data"])
    run = run_worker(put_job(job_item(s)))
    assert run.code == 1
    assert "node 'wf' failed" in run.job["error_message"]
    assert "outside your namespace" in run.job["error_message"]
    assert not list(dao.blobs.list_keys(BOB + "wf-"))


def test_one_megabyte_output_is_offloaded_and_the_job_stays_small(put_job, run_worker, user_storage, dao):
    # Given a 1 MB text object in the user's namespace
    big = ("0123456789abcdef" * 65536)
    key = f"{NAMESPACE}{unique('big')}.txt"
    user_storage.put_bytes(key, big.encode(), "text/plain")
    s = script([action("get", "sys.blob.get_text", key=key)], ["get:text -> mainOutput:text",
                                                               "get:size -> mainOutput:size"])
    # When a script reads it into its output
    run = run_worker(put_job(job_item(s)))
    # Then the job SUCCEEDED, the item is far below 400 KB, and the value is in the bucket
    assert run.code == 0, run.stdout + run.stderr
    job = run.job
    assert item_size(job) < ITEM_LIMIT
    assert job["output"]["size"]["ival"] == str(len(big))
    ref = job["output"]["text"]
    assert ref["ptype"] == "KEY" and ref["sval"] == job["offloaded"]["output.text"]
    assert ref["sval"].startswith(NAMESPACE)
    stored = json.loads(dao.blobs.get_bytes(ref["sval"]))
    assert stored["sval"] == big and stored.get("ptype", "STRING") == "STRING"
    assert json.loads(dao.blobs.get_bytes(job["offloaded"]["receipts.get.text"]))["sval"] == big
    assert "get:receipt" not in job["registers"]  # receipts are stored once, in receipts


def test_many_medium_values_still_fit(put_job, run_worker, dao):
    # 300 actions each producing 12 KB: every value is under the per-value limit, together ~10 MB
    count = 300
    s = script([static("v", {"x": "y"}, out="values")] +
               [action(f"f{i}", "sys.text.format", template="{x:>12000}") for i in range(count)],
               [f"v:values -> f{i}:values" for i in range(count)] + ["f0:text -> mainOutput:first"])
    run = run_worker(put_job(job_item(s)), timeout=300)
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    job = run.job
    assert item_size(job) < ITEM_LIMIT, item_size(job)
    assert job["action_count"] == count
    # whatever was moved out is listed, and reading it back gives every value again
    values = JobValues(None, "")  # type: ignore[arg-type]
    values.storage = _Reader(dao)
    registers, receipts = values.decode(job, parse_job(job))
    assert len(receipts) == count and all(r.success for r in receipts.values())
    assert from_any(registers["f7:text"]) == " " * 11999 + "y"
    assert receipts["f9"].outputs["text"].sval == " " * 11999 + "y"


class _Reader:
    namespace = NAMESPACE

    def __init__(self, dao) -> None:
        self.dao = dao

    def get_bytes(self, key: str) -> bytes:
        assert key.startswith(NAMESPACE)
        return self.dao.blobs.get_bytes(key)


def test_job_values_round_trip_through_the_bucket(user_storage):
    values = JobValues(user_storage, f"{NAMESPACE}.plus-worker/jobs/{unique('rt')}/", budget_bytes=40_000)
    registers = {f"n{i}:text": "z" * (3000 + i) for i in range(40)} | {"small:n": 5, "big:text": "b" * 50_000}
    receipts = {}
    for i in range(40):
        receipt = Receipt(success=True)
        receipt.outputs["text"].CopyFrom(to_any("r" * 2000))
        receipts[f"n{i}"] = receipt
    attrs = values.encode(registers=to_any_map(registers), receipts=receipts,
                          output=to_any_map({"out": "o" * 20_000}))
    assert item_size(attrs) < 40_000
    item = {**attrs}
    from feaas.dao.codec import parse_message
    from feaas.objects import PlusScriptJob
    job = parse_message({k: v for k, v in item.items() if k != "offloaded"}, PlusScriptJob())
    back_registers, back_receipts = JobValues(user_storage, values.prefix).decode(item, job)
    assert from_any_map(back_registers) == registers
    assert {n: message_to_plain(r) for n, r in back_receipts.items()} == \
        {n: message_to_plain(r) for n, r in receipts.items()}


def test_other_users_data_is_refused_and_unchanged(put_job, run_worker, dao):
    # Given bob's object and document
    bob_key = f"{BOB}{unique('secret')}.txt"
    dao.blobs.put_bytes(bob_key, b"bob's secret", "text/plain")
    bob_doc = f"{BOB}notes.{uuid.uuid4()}"
    dao.docs.put_new({"object_id": bob_doc, "owner": f"{BOB}notes", "title": "bob"})
    mine = f"{NAMESPACE}{unique('mine')}.txt"
    tricks = {
        "read": action("read", "sys.blob.get_text", key=bob_key),
        "read_dotdot": action("read_dotdot", "sys.blob.get_text",
                              key=f"{NAMESPACE}../bob@example.com/{bob_key.rsplit('/', 1)[1]}"),
        "write": action("write", "sys.blob.put_text", key=bob_key, text="owned"),
        "write_prefix": action("write_prefix", "sys.blob.put_text",
                               key=bob_key.replace("bob@example.com/", "alice@example.comx/"), text="x"),
        "copy_in": action("copy_in", "sys.blob.copy", src_key=bob_key, dest_key=mine),
        "copy_out": action("copy_out", "sys.blob.copy", src_key=mine, dest_key=bob_key),
        "doc_get": action("doc_get", "sys.doc.get", object_id=bob_doc),
        "doc_update": action("doc_update", "sys.doc.update", object_id=bob_doc),
    }
    nodes = [*tricks.values(), static("vals", {"title": "pwned"}, out="values")]
    links = ["vals:values -> doc_update:values"]
    for name in tricks:
        nodes.append(node(f"{name}_meta", NT.RECEIPT_META))
        links += [f"{name}:receipt -> {name}_meta:receipt", f"{name}_meta:error_message -> mainOutput:{name}"]
    # When alice's script tries them all, each behind an error branch
    run = run_worker(put_job(job_item(script(nodes, links))))
    # Then every one failed with "outside your namespace" and bob's data is unchanged
    assert run.code == 0, run.stdout
    for name in tricks:
        message = run.job["output"][name]["sval"]
        assert "outside your namespace" in message, (name, message)
    assert dao.blobs.get_bytes(bob_key) == b"bob's secret"
    assert dao.docs.get(bob_doc)["title"] == "bob"
    assert not dao.blobs.exists(mine)


def test_cross_namespace_read_without_error_branch_fails_the_job(put_job, run_worker):
    s = script([action("read", "sys.blob.get_text", key=f"{BOB}anything.txt")])
    run = run_worker(put_job(job_item(s)))
    assert run.code == 1 and run.job["status"] == "FAILED"
    assert "outside your namespace" in run.job["error_message"] and "read" in run.job["error_message"]


def test_unknown_action_ids_refused_before_anything_runs(put_job, run_worker, dao):
    key = f"{NAMESPACE}{unique('never')}.txt"
    s = script([action("write", "sys.blob.put_text", key=key, text="x"), action("sh", "os.system"),
                action("sp", "subprocess.run"), action("ok", "sys.debug.nap.Nap")])
    run = run_worker(put_job(job_item(s)))
    assert run.code == 1 and run.job["status"] == "FAILED"
    assert "unknown action id 'os.system'" in run.job["error_message"]
    assert "unknown action id 'subprocess.run'" in run.job["error_message"]
    assert "Nap" not in run.job["error_message"]  # the old class-path form is known
    assert not run.job.get("receipts") and not dao.blobs.exists(key)


def test_validation_problems_are_listed_together(put_job, run_worker):
    s = script([action("a", "sys.math.add"), action("b", "sys.math.add"), action("c", "sys.math.add"),
                action("x", "no.such.action")],
               ["ghost:v -> a:a", "a:sum -> nowhere:v", "b:sum -> c:a", "c:sum -> b:a", "mainInput:q -> b:b",
                "mainInput:q -> c:b", "mainInput:r -> c:b"])
    run = run_worker(put_job(job_item(s, input_data={"q": 1, "r": 2})))
    assert run.code == 1
    message = run.job["error_message"]
    for part in ("source 'ghost' is not a node", "target 'nowhere' is not a node", "cycle: ",
                 "input c:b is fed by two links", "unknown action id 'no.such.action'",
                 "node 'a': required input 'b' of sys.math.add has no link and no default"):
        assert part in message, part
    assert not run.job.get("receipts")


def test_resume_does_not_rerun_a_successful_receipt(put_job, run_worker, dao):
    # Given a job whose receipts already hold a successful put_text (from an earlier attempt)
    key = f"{NAMESPACE}{unique('resumed')}.txt"
    s = script([action("put", "sys.blob.put_text", key=key, text="second time"),
                action("echo", "sys.debug.echo")],
               ["put:key -> echo:k", "echo:k -> mainOutput:k"])
    earlier = Receipt(success=True, timestamp=int(time.time() * 1000), primary_output="key")
    earlier.outputs["key"].CopyFrom(to_any(key))
    item = job_item(s, receipts={"put": message_to_plain(earlier)},
                    registers={"put:key": message_to_plain(to_any(key))})
    # When the worker runs it
    run = run_worker(put_job(item))
    # Then the put was not run again (nothing written) and its output still flowed on
    assert run.code == 0, run.stdout
    try:
        dao.blobs.get_bytes(key)
        written = True
    except BlobNotFound:
        written = False
    assert not written
    assert run.job["output"]["k"]["sval"] == key
    assert run.job["receipts"]["echo"]["success"] is True
    assert [e["outcome"] for e in run.events("node_finished") if e["node"] == "put"] == ["resumed"]


def test_five_hundred_actions_run_and_five_hundred_and_one_are_refused(put_job, run_worker):
    def chain(count: int):
        nodes = [action(f"a{i}", "sys.math.add", b=1) for i in range(count)]
        links = ["mainInput:start -> a0:a"] + [f"a{i}:sum -> a{i + 1}:a" for i in range(count - 1)]
        return script(nodes, [*links, f"a{count - 1}:sum -> mainOutput:total"])

    refused = run_worker(put_job(job_item(chain(501), input_data={"start": 0})))
    assert refused.code == 1
    assert "the script has 501 actions; the limit is 500" in refused.job["error_message"]
    assert not refused.job.get("receipts")
    ran = run_worker(put_job(job_item(chain(500), input_data={"start": 0})), timeout=300)
    assert ran.code == 0, ran.stdout[-2000:]
    assert ran.job["output"]["total"]["ival"] == "500" and ran.job["action_count"] == 500
    assert item_size(ran.job) < ITEM_LIMIT


def test_node_started_is_logged_when_the_node_starts_not_when_it_is_queued(put_job, run_worker):
    # Given two independent naps, both ready at once, and one slot (issue 11 §5)
    s = script([static("s", 0.2), action("a", "sys.debug.nap"), action("b", "sys.debug.nap")],
               ["s:value -> a:seconds", "s:value -> b:seconds"])
    # When the worker runs it
    run = run_worker(put_job(job_item(s)), CONCURRENCY=1)
    # Then the second nap is announced only after the first one finished
    assert run.code == 0, run.stdout + run.stderr
    naps = [(line["event"], line["node"]) for line in run.lines
            if line.get("event") in ("node_started", "node_finished")]
    first, second = naps[0][1], "b" if naps[0][1] == "a" else "a"
    assert naps == [("node_started", first), ("node_finished", first),
                    ("node_started", second), ("node_finished", second)]
