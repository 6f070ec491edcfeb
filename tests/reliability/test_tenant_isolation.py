"""Tenant isolation: alice's jobs try to reach bob's data every way a script or a job document can.

Each attack runs through ``python -m src.worker`` as alice (``plus_example_com/alice@example.com/``)
and must be refused — the job ends FAILED (exit 1) with "outside your namespace" or a mismatch
message — and bob's objects, documents, collection and stream must be exactly as before.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from feaas.dao import Dao
from feaas.objects import DestinationType
from tests.reliability.prefetch import Prefetch, run_worker_now, selected
from tests.support.collections import seed_collection
from tests.support.scripts import NAMESPACE, NT, action, job_item, node, script, static

HOST = "plus_example_com"
BOB = f"{HOST}/bob@example.com/"
OTHER_HOST = "evil_example_net"
OUTSIDE = "outside your namespace"
RUN = uuid.uuid4().hex[:8]  # this session's victim data


@dataclass(frozen=True)
class Victim:
    key: str = f"{BOB}tenant-{RUN}/secret.txt"
    csv: str = f"{BOB}tenant-{RUN}/sales.csv"
    doc: str = f"{BOB}notes.{RUN}"
    collection: str = f"{BOB}collection-{RUN}"
    stream: str = f"{BOB}stream-{RUN}"
    other_host_key: str = f"{OTHER_HOST}/alice@example.com/secret-{RUN}.txt"
    mine: str = f"{NAMESPACE}tenant-{RUN}/mine.txt"  # alice's own object (source of copy-out)


V = Victim()


def snapshot(dao: Dao) -> dict[str, Any]:
    """Everything of bob's (and of the other host's alice) that an attack could touch."""
    blobs = {key: dao.blobs.get_bytes(key)
             for prefix in (BOB, f"{OTHER_HOST}/") for key in dao.blobs.list_keys(prefix)}
    docs = [dao.docs.get(V.doc), *sorted((i for page, _ in dao.docs.owner_pages(V.collection) for i in page),
                                         key=lambda i: i["object_id"])]
    full = [dao.docs.get(i["object_id"]) for i in docs[1:]]
    return {"blobs": blobs, "doc": docs[0], "collection": full, "stream": list(dao.streams.rows(V.stream))}


@pytest.fixture(scope="module")
def victim(dao: Dao) -> dict[str, Any]:
    """Seed bob's data once; returns its snapshot, which every attack must leave as it is."""
    dao.blobs.put_bytes(V.key, b"bob's secret", "text/plain")
    dao.blobs.put_bytes(V.csv, b"region,amount\nnorth,10\nsouth,20\n", "text/csv")
    dao.blobs.put_bytes(V.other_host_key, b"another host's alice", "text/plain")
    dao.blobs.put_bytes(V.mine, b"alice's own", "text/plain")
    dao.docs.put_new({"object_id": V.doc, "owner": f"{BOB}notes", "title": "bob"})
    seed_collection(dao, V.collection, 3, lambda i: {"n": i, "title": f"bob {i}"})
    for i in range(2):
        dao.streams.append(V.stream, {"n": i, "note": "bob's row"})
    seeded = snapshot(dao)
    assert seeded["doc"]["title"] == "bob" and len(seeded["collection"]) == 3 and len(seeded["stream"]) == 2
    assert seeded["blobs"][V.key] == b"bob's secret"
    return seeded


Env = dict[str, Any]
Build = Callable[[], tuple[dict[str, Any], Env]]


def act(action_id: str, **inputs: Any) -> Build:
    return lambda: (job_item(), {"RUN_MODE": "RUN_ACTION", "ACTION_ID": action_id,
                                 "ACTION_INPUT_JSON": json.dumps(inputs)})


def run_mode(mode: str, env: Env | None = None, **attrs: Any) -> Build:
    return lambda: (job_item(script([action("echo", "sys.debug.echo")], ["mainInput:object_id -> echo:id"]),
                             **attrs),
                    {"RUN_MODE": mode, **(env or {})})


def scripted(nodes: list[Any], links: list[str], **extra: Any) -> Build:
    return lambda: (job_item(script(nodes, links), **extra), {})


def read_bob(key: str = V.key, **job_overrides: Any) -> Callable[[Env], Build]:
    """A job of alice's whose script reads ``key`` (bob's secret), run with ``env``."""
    def with_env(env: Env) -> Build:
        def build() -> tuple[dict[str, Any], Env]:
            item = job_item(script([action("read", "sys.blob.get_text", key=key)],
                                   ["read:text -> mainOutput:text"]))
            for name, value in job_overrides.items():
                if value is None:
                    item.pop(name, None)
                else:
                    item[name] = value
            return item, env
        return build
    return with_env


@dataclass(frozen=True)
class Attack:
    id: str
    build: Build
    says: tuple[str, ...]
    code: int = 1
    check: Callable[[Any, Dao], None] | None = None


def nothing_ran(run: Any, dao: Dao) -> None:
    assert not run.job.get("receipts"), run.job.get("receipts")


def alice_copy_absent(run: Any, dao: Dao) -> None:
    assert not dao.blobs.exists(f"{NAMESPACE}tenant-{RUN}/stolen.txt")


def percent_literal(run: Any, dao: Dao) -> None:
    """S3 keys are literal: ``%2e%2e`` is three characters, never decoded to ``..``. The write stays
    inside alice's namespace under exactly that name."""
    written = run.job["output"]["key"]["sval"]
    assert written == f"{NAMESPACE}%2e%2e/bob@example.com/tenant-{RUN}/secret.txt"
    assert dao.blobs.get_bytes(written) == b"owned?"


ATTACKS: list[Attack] = [
    # --- reads -------------------------------------------------------------------------------------------
    Attack("read-bob-key", act("sys.blob.get_text", key=V.key), (OUTSIDE, V.key)),
    Attack("read-dotdot",
           act("sys.blob.get_text", key=f"{NAMESPACE}../bob@example.com/tenant-{RUN}/secret.txt"),
           (OUTSIDE,)),
    Attack("read-deep-dotdot",
           act("sys.blob.get_text", key=f"{NAMESPACE}a/b/../../../bob@example.com/tenant-{RUN}/secret.txt"),
           (OUTSIDE,)),
    Attack("read-leading-slash", act("sys.blob.get_text", key="/" + V.key), (OUTSIDE,)),
    Attack("read-double-slash", act("sys.blob.get_text", key=V.key.replace(f"{HOST}/", f"{HOST}//")),
           (OUTSIDE,)),
    Attack("read-slash-dotdot",
           act("sys.blob.get_text", key=f"{NAMESPACE}/../bob@example.com/tenant-{RUN}/secret.txt"),
           (OUTSIDE,)),
    Attack("read-percent-encoded", act("sys.blob.get_text",
                                       key=f"{NAMESPACE}%2e%2e/bob@example.com/tenant-{RUN}/secret.txt"),
           ("no object at", f"{NAMESPACE}%2e%2e/")),
    Attack("read-prefix-lookalike", act("sys.blob.get_text", key=f"{HOST}/alice@example.com.bob/secret.txt"),
           (OUTSIDE,)),
    # --- writes and copies -------------------------------------------------------------------------------
    Attack("write-bob-key", act("sys.blob.put_text", key=V.key, text="owned"), (OUTSIDE,)),
    Attack("write-bob-new-key", act("sys.blob.put_text", key=f"{BOB}tenant-{RUN}/planted.txt", text="x"),
           (OUTSIDE,)),
    Attack("write-percent-encoded",
           act("sys.blob.put_text", key=f"{NAMESPACE}%2e%2e/bob@example.com/tenant-{RUN}/secret.txt",
               text="owned?"), (), code=0, check=percent_literal),
    Attack("copy-bob-to-alice",
           act("sys.blob.copy", src_key=V.key, dest_key=f"{NAMESPACE}tenant-{RUN}/stolen.txt"),
           (OUTSIDE, V.key), check=alice_copy_absent),
    Attack("copy-alice-to-bob", act("sys.blob.copy", src_key=V.mine, dest_key=V.key), (OUTSIDE,)),
    # --- WRITER destinations ---------------------------------------------------------------------------
    Attack("writer-dest-prefix",
           scripted([static("t", "planted"), node("w", NT.WRITER, dest_prefix=f"{BOB}tenant-{RUN}/")],
                    ["t:value -> w:data"]), ("node 'w' failed", OUTSIDE)),
    Attack("writer-dest-prefix-dotdot", scripted(
        [static("t", "planted"), node("w", NT.WRITER, dest_prefix=f"{NAMESPACE}../bob@example.com/")],
        ["t:value -> w:data"]), ("node 'w' failed", OUTSIDE)),
    Attack("writer-dest-stream", scripted(
        [static("t", "planted"),
         node("w", NT.WRITER, dest_destination=DestinationType.STREAM, dest_stream_id=V.stream)],
        ["t:value -> w:data"]), ("node 'w' failed", OUTSIDE, V.stream)),
    # --- documents ----------------------------------------------------------------------------------------
    Attack("doc-get-bob", act("sys.doc.get", object_id=V.doc), (OUTSIDE,)),
    Attack("doc-get-dotdot", act("sys.doc.get", object_id=f"{NAMESPACE}../bob@example.com/notes.{RUN}"),
           ("not a plain id",)),
    Attack("doc-update-bob", act("sys.doc.update", object_id=V.doc, values={"title": "pwned"}), (OUTSIDE,)),
    Attack("doc-update-bob-item", act("sys.doc.update", object_id=f"{V.collection}.item-000000",
                                      values={"owner": f"{NAMESPACE}x"}), (OUTSIDE,)),
    # --- runs over another user's items -----------------------------------------------------------------
    Attack("collection-env-bob", run_mode("RUN_COLLECTION", {"COLLECTION_OWNER": V.collection}),
           ("collection", OUTSIDE)),
    Attack("collection-attr-bob",
           run_mode("RUN_JOB", job_type="run_on_collection", collection_owner=V.collection),
           ("collection", OUTSIDE)),
    Attack("collection-attr-dotdot", run_mode("RUN_COLLECTION",
                                              collection_owner=f"{NAMESPACE}../bob@example.com/collection-{RUN}"),
           ("collection", OUTSIDE)),
    Attack("stream-bob", run_mode("RUN_STREAM", {"STREAM_ID": V.stream}), ("stream", OUTSIDE)),
    Attack("files-prefix-bob", run_mode("RUN_FILES", prefix=f"{BOB}tenant-{RUN}/"), (OUTSIDE,)),
    Attack("files-keys-bob", run_mode("RUN_FILES", file_keys=[f"{NAMESPACE}x.txt", V.key]), (OUTSIDE,)),
    # --- heavy actions ---------------------------------------------------------------------------------
    Attack("dataset-source-bob", act("sys.dataset.query", sources=[V.csv], sql="select * from sales",
                                     dest_key=f"{NAMESPACE}tenant-{RUN}/out.csv"), (OUTSIDE,)),
    Attack("dataset-dest-bob",
           act("sys.dataset.query", sources=[V.mine.replace(".txt", ".csv")], sql="select 1",
               dest_key=f"{BOB}tenant-{RUN}/out.csv"), (OUTSIDE,)),
    Attack("ffmpeg-probe-bob", act("vendor.ffmpeg.probe", key=V.key), (OUTSIDE,)),
    # --- identity -----------------------------------------------------------------------------------------
    Attack("hostname-attribute-other-host", read_bob(V.other_host_key, hostname=OTHER_HOST)({}),
           ("hostname mismatch", OTHER_HOST), check=nothing_ran),
    Attack("username-env-bob", read_bob()({"USERNAME": "bob@example.com"}), ("username mismatch",),
           check=nothing_ran),
    Attack("username-env-bob-no-username-field", read_bob(username=None)({"USERNAME": "bob@example.com"}),
           ("username mismatch", "alice@example.com"), check=nothing_ran),
]


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, stack, dao: Dao, victim) -> Iterator[Prefetch]:
    """Every selected attack's worker run, a few at a time (see ``prefetch``)."""
    def run(attack: Attack) -> Any:
        item, env = attack.build()
        dao.docs.put_new(item)
        return run_worker_now(stack, dao, item["object_id"], **env)

    prefetch = Prefetch(selected(request, "attack"), lambda a: a.id, run)
    yield prefetch
    prefetch.close()


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack_is_refused(attack: Attack, victim, runs: Prefetch, dao, report) -> None:
    report.add(attacks_tried=1)

    run = runs.get(attack)

    output = run.stdout + run.stderr
    assert "Traceback" not in output, output[-4000:]
    assert run.code == attack.code, (run.code, run.job.get("error_message"), output[-3000:])
    assert run.job["status"] == ("FAILED" if attack.code else "SUCCEEDED")
    assert "lease_owner" not in run.job
    message = run.job.get("error_message", "")
    for fragment in attack.says:
        assert fragment in message, (fragment, message)
    if attack.check is not None:
        attack.check(run, dao)
    # bob's objects, document, collection and stream are as seeded (attacks run a few at a time,
    # so this also covers every attack that finished before this one)
    assert snapshot(dao) == victim
    report.add(attacks_refused=1)
