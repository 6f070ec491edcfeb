"""Runs over many items against floors measured in the same run (issue 16).

    python -m tests.bench.bench_items [--quick] [--only NAME,...]

Parts (``--only`` picks some; the quick mode shrinks every size):

headline  the worker (receipt modes ``transaction`` and ``batch``) against (a) the FLOOR — the same
          request stream without the engine: the same count and page queries, the same 50-item
          TransactWriteItems (conditional receipt put + conditional write-back) written by the same
          4 writers through the same client settings — and (b) a BatchWriteItem CEILING
          (unconditional puts of the receipt and of the whole updated item). Discarded warm-up, then
          A/B/A/B rounds, ≥ 5 repeats. Target: worker ≥ 0.9 × floor. Cost: WCU per item in batch mode ≤ 2.
baselines (c) today's unbatched per-item program (one update + one put per item, C=8, botocore
          validation on, standard retries) and (d) an emulation of the upstream worker's design (items
          one at a time, a whole-document put and a new job document per item), each interleaved
          with the worker on the same collection size.
curves    1k / 10k / 100k items: items/s, requests, WCU/RCU, worker CPU-ms per item, latency p50/p99
          (receipts' duration_ms); engine time per item in a collection run.
rss       peak RSS of ``python -m src.worker`` at 10k and 100k items, a first run and a resumed run
          (SIGTERM at half, relaunch). Target: growth ≤ 200 bytes per item.
io        items doing real I/O (a DynamoDB GetItem and an S3 GET each) through fault proxies adding
          20 ms per request, CONCURRENCY 1…32. Target: C=16 ≥ 12 × C=1 (items stage throughput).
failures  1 % failing items (the script fails) plus 1 % whose write-back DynamoDB refuses (a whole
          transaction rewritten item by item), and 5 % of requests throttled by the fault proxy.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

from feaas.dao import Dao, make_clients
from feaas.dao.codec import to_dynamo
from feaas.settings import Settings
from feaas.stopping import StopSignal
from tests.bench.common import (
    BUCKET,
    ROOT,
    STREAMS_TABLE,
    TABLE,
    Meter,
    Results,
    at_least,
    at_most,
    bench_stack,
    column,
    interleaved,
    latency_proxy,
    make_dao,
    metered_clients,
    quick_mode,
    stats,
)
from tests.support import localstack
from tests.support.collections import seed_collection, tag_script
from tests.support.environ import setting_env
from tests.support.scripts import NAMESPACE, NT, USERNAME, action, job_item, node, script, static

CONCURRENCY = 8
FLOOR_BATCH, FLOOR_WRITERS = 50, 4  # as feaas/runners/items.py: FLUSH_ITEMS, WRITERS
PARTS = ("headline", "baselines", "curves", "rss", "io", "failures")


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "headline": 1000,
            "warmup": 300,
            "repeats": 5,
            "slow": 150,
            "slow_repeats": 5,
            "curve": [(200, 1), (1000, 1), (3000, 1)],
            "rss": (1000, 3000),
            "io": 8,
            "io_repeats": 2,
            "failures": 1000,
            "throttle": 500,
        }
    return {
        "headline": 20000,
        "warmup": 3000,
        "repeats": 5,
        "slow": 1500,
        "slow_repeats": 5,
        "curve": [(1000, 3), (10000, 3), (100000, 1)],
        "rss": (10000, 100000),
        "io": 80,
        "io_repeats": 5,
        "failures": 10000,
        "throttle": 5000,
    }


# --- collections ----------------------------------------------------------------------------------


def new_collection(dao: Dao, count: int, make: Callable[[int], dict[str, Any]] = lambda i: {"n": i}) -> str:
    owner = f"{NAMESPACE}bench-{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    seed_collection(dao, owner, count, make=make)
    print(f"  seeded {count:,} items in {time.perf_counter() - began:.1f} s", flush=True)
    return owner


def settings_for(job_id: str, concurrency: int, receipt_mode: str) -> Settings:
    return Settings(
        run_mode="RUN_COLLECTION",
        job_id=job_id,
        username=USERNAME,
        region=localstack.DEFAULT_REGION,
        dynamo_table=TABLE,
        dynamo_streams_table=STREAMS_TABLE,
        primary_bucket=BUCKET,
        concurrency=concurrency,
        heartbeat_seconds=5,
        log_format="json",
        log_level="INFO",
        receipt_mode=receipt_mode,
    )  # type: ignore[arg-type]


def stream_of(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"


class EventCapture(logging.Handler):
    """Keeps the fields of the worker's ``items_finished`` log event (the items stage's own clock)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.finished: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "items_finished":
            self.finished = dict(getattr(record, "fields", {}))


@contextlib.contextmanager
def engine_timer() -> Iterator[list[float]]:
    """Sums the wall time of every ``Engine.run`` (one per item) while active."""
    from feaas.psee.engine import Engine

    spent = [0.0]
    lock = threading.Lock()
    real = Engine.run

    def timed_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return real(self, *args, **kwargs)
        finally:
            with lock:
                spent[0] += time.perf_counter() - began

    Engine.run = timed_run  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        Engine.run = real  # type: ignore[method-assign]


def run_worker(
    dao: Dao,
    owner: str,
    script_: Any,
    *,
    concurrency: int = CONCURRENCY,
    mode: str = "transaction",
    env: dict[str, str] | None = None,
    engine_cost: bool = False,
    latencies: bool = False,
) -> dict[str, float]:
    """The real worker code (claim → run → finish) in this process: wall time, the items stage's
    time, DynamoDB requests and units, CPU time of this process (the servers run elsewhere)."""
    import src.worker as worker

    item = job_item(script_, collection_owner=owner)
    dao.docs.put_new(item)
    job_id = str(item["object_id"])
    capture = EventCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with (
            setting_env(env or {}),
            metered_clients() as meter,
            engine_timer() if engine_cost else contextlib.nullcontext([0.0]) as spent,
        ):
            cpu0, began = time.process_time(), time.perf_counter()
            code = worker.run(settings_for(job_id, concurrency, mode), StopSignal())
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu0
    finally:
        root.removeHandler(capture)
    job = dao.docs.get(job_id) or {}
    assert code == 0, f"worker exit code {code}: {job.get('error_message')}"
    done = int(job.get("success_count", 0)) + int(job.get("error_count", 0))
    usage = meter.snapshot()
    stage_s = float(capture.finished.get("duration_ms", elapsed * 1000)) / 1000
    result = {
        "items": done,
        "errors": int(job.get("error_count", 0)),
        "seconds": elapsed,
        "items_per_s": done / elapsed,
        "stage_items_per_s": done / stage_s if stage_s else 0.0,
        "requests": usage["requests"],
        "wcu": usage["wcu"],
        "rcu": usage["rcu"],
        "cpu_s": cpu,
        "engine_s": spent[0],
    }
    if latencies:
        result.update(receipt_latencies(dao, stream_of(job_id)))
    return result


def receipt_latencies(dao: Dao, stream_id: str) -> dict[str, float]:
    """p50 / p99 of the receipts' ``duration_ms``."""
    durations: list[float] = []
    request: dict[str, Any] = {
        "TableName": STREAMS_TABLE,
        "KeyConditionExpression": "stream_id = :s",
        "ExpressionAttributeValues": {":s": {"S": stream_id}},
        "ProjectionExpression": "duration_ms",
    }
    while True:
        page = dao.streams.client.query(**request)
        durations += [float(i["duration_ms"]["N"]) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    q = statistics.quantiles(durations, n=100)
    return {"p50_ms": statistics.median(durations), "p99_ms": q[98]}


# --- the floor, the ceiling and the other baselines ----------------------------------------------


def outputs_of(total: int) -> dict[str, Any]:
    """The receipt's ``outputs`` as the worker stores them for tag_script (``sum``, an INTEGER AnyType)."""
    return {"sum": {"ptype": "INTEGER", "ival": str(total)}}


def owner_pages(client: Any, owner: str) -> Iterator[list[dict[str, Any]]]:
    request: dict[str, Any] = {
        "TableName": TABLE,
        "IndexName": "ownerIndex",
        "KeyConditionExpression": "#o = :o",
        "ExpressionAttributeNames": {"#o": "owner"},
        "ExpressionAttributeValues": {":o": {"S": owner}},
        "Limit": 500,
    }
    while True:
        page = client.query(**request)
        yield page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def same_stream_start(client: Any, owner: str, stream_id: str) -> None:
    """What the worker asks before its first item: the item count and the stream's newest row."""
    request: dict[str, Any] = {
        "TableName": TABLE,
        "IndexName": "ownerIndex",
        "KeyConditionExpression": "#o = :o",
        "FilterExpression": "NOT contains(#k, :x)",
        "Select": "COUNT",
        "ExpressionAttributeNames": {"#o": "owner", "#k": "object_id"},
        "ExpressionAttributeValues": {":o": {"S": owner}, ":x": {"S": "/job."}},
    }
    while True:
        page = client.query(**request)
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    client.query(
        TableName=STREAMS_TABLE,
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream_id}},
        ScanIndexForward=False,
        Limit=1,
    )


class Clock:
    def __init__(self) -> None:
        self.ms = int(time.time() * 1000)
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            self.ms = max(self.ms + 1, int(time.time() * 1000))
            return self.ms


def receipt_item(stream_id: str, ts: int, oid: str, total: int) -> dict[str, Any]:
    return to_dynamo(
        {
            "object_id": oid,
            "success": True,
            "error_message": "",
            "outputs": outputs_of(total),
            "duration_ms": 0.1,
            "attempt": 1,
            "job_id": stream_id,
            "stream_id": stream_id,
            "timestamp": ts,
        }
    )


def pipelined(
    client: Any, owner: str, stream_id: str, per_batch: int, write: Callable[[list[dict[str, Any]]], None]
) -> int:
    """Query pages, cut them into batches, write them on FLOOR_WRITERS threads (at most that many in
    flight beyond the one being filled, as the worker does)."""
    same_stream_start(client, owner, stream_id)
    slots = threading.Semaphore(FLOOR_WRITERS)
    done = 0
    errors: list[BaseException] = []

    def guarded(batch: list[dict[str, Any]]) -> None:
        try:
            write(batch)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)
        finally:
            slots.release()

    with ThreadPoolExecutor(FLOOR_WRITERS) as pool:
        batch: list[dict[str, Any]] = []
        for page in owner_pages(client, owner):
            for item in page:
                batch.append(item)
                if len(batch) == per_batch:
                    slots.acquire()
                    pool.submit(guarded, batch)
                    done, batch = done + len(batch), []
        if batch:
            slots.acquire()
            pool.submit(guarded, batch)
            done += len(batch)
    if errors:
        raise errors[0]
    return done


def measured(fn: Callable[[Any], int], *, split_job_writes: bool = True) -> dict[str, float]:
    """Run a baseline with a fresh, metered client configured as the worker's (validation off)."""
    clients = make_clients(localstack.DEFAULT_REGION, max_pool=CONCURRENCY * 2 + 8)
    meter = Meter(split_job_writes=split_job_writes)
    meter.attach(clients.dynamodb)
    cpu0, began = time.process_time(), time.perf_counter()
    done = fn(clients.dynamodb)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu0
    usage = meter.snapshot()
    return {
        "items": done,
        "seconds": elapsed,
        "items_per_s": done / elapsed,
        "requests": usage["requests"],
        "wcu": usage["wcu"],
        "rcu": usage["rcu"],
        "cpu_s": cpu,
    }


def floor_run(owner: str) -> dict[str, float]:
    """(a) The worker's request stream without the engine."""
    stream_id = f"{NAMESPACE}stream-floor.{uuid.uuid4().hex}"
    clock = Clock()

    def write(client: Any, batch: list[dict[str, Any]]) -> None:
        actions: list[dict[str, Any]] = []
        for item in batch:
            oid, total = item["object_id"]["S"], int(item["n"]["N"]) + 1
            actions.append(
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"object_id": {"S": oid}},
                        "UpdateExpression": "SET #a = :a, #b = :b",
                        "ConditionExpression": "attribute_exists(#k)",
                        "ExpressionAttributeNames": {"#a": "n_plus_one", "#b": "status", "#k": "object_id"},
                        "ExpressionAttributeValues": {":a": {"N": str(total)}, ":b": {"S": "processed"}},
                    }
                }
            )
            actions.append(
                {
                    "Put": {
                        "TableName": STREAMS_TABLE,
                        "Item": receipt_item(stream_id, clock.next(), oid, total),
                        "ConditionExpression": "attribute_not_exists(#ts)",
                        "ExpressionAttributeNames": {"#ts": "timestamp"},
                    }
                }
            )
        client.transact_write_items(TransactItems=actions, ClientRequestToken=uuid.uuid4().hex)

    return measured(
        lambda client: pipelined(client, owner, stream_id, FLOOR_BATCH, lambda batch: write(client, batch))
    )


def ceiling_run(owner: str) -> dict[str, float]:
    """(b) Unconditional BatchWriteItem: the receipt and the whole updated item, 12 items per request."""
    stream_id = f"{NAMESPACE}stream-ceiling.{uuid.uuid4().hex}"
    clock = Clock()

    def write(client: Any, batch: list[dict[str, Any]]) -> None:
        docs, rows = [], []
        for item in batch:
            total = int(item["n"]["N"]) + 1
            docs.append(
                {
                    "PutRequest": {
                        "Item": {**item, "n_plus_one": {"N": str(total)}, "status": {"S": "processed"}}
                    }
                }
            )
            rows.append(
                {"PutRequest": {"Item": receipt_item(stream_id, clock.next(), item["object_id"]["S"], total)}}
            )
        pending: dict[str, Any] = {TABLE: docs, STREAMS_TABLE: rows}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    return measured(
        lambda client: pipelined(client, owner, stream_id, 12, lambda batch: write(client, batch))
    )


def unbatched_run(owner: str) -> dict[str, float]:
    """(c) Today's unbatched per-item program: per item one conditional update and one conditional
    put, CONCURRENCY items at a time, page by page (botocore defaults: validation on, standard retries)."""
    stream_id = f"{NAMESPACE}stream-unbatched.{uuid.uuid4().hex}"
    clock = Clock()

    def run(_: Any) -> int:
        client = boto3.client(
            "dynamodb",
            region_name=localstack.DEFAULT_REGION,
            config=Config(max_pool_connections=CONCURRENCY + 4, retries={"mode": "standard"}),
        )
        meter.attach(client)

        def one(item: dict[str, Any]) -> None:
            oid, total = item["object_id"]["S"], int(item["n"]["N"]) + 1
            client.update_item(
                TableName=TABLE,
                Key={"object_id": {"S": oid}},
                UpdateExpression="SET #a = :a, #s = :s",
                ConditionExpression="attribute_exists(object_id)",
                ExpressionAttributeNames={"#a": "n_plus_one", "#s": "status"},
                ExpressionAttributeValues={":a": {"N": str(total)}, ":s": {"S": "processed"}},
            )
            client.put_item(
                TableName=STREAMS_TABLE,
                Item=receipt_item(stream_id, clock.next(), oid, total),
                ConditionExpression="attribute_not_exists(#t)",
                ExpressionAttributeNames={"#t": "timestamp"},
            )

        done = 0
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            for page in owner_pages(client, owner):
                list(pool.map(one, page))
                done += len(page)
        return done

    meter = Meter()
    cpu0, began = time.process_time(), time.perf_counter()
    done = run(None)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu0
    usage = meter.snapshot()
    return {
        "items": done,
        "seconds": elapsed,
        "items_per_s": done / elapsed,
        "requests": usage["requests"],
        "wcu": usage["wcu"],
        "rcu": usage["rcu"],
        "cpu_s": cpu,
    }


def upstream_run(owner: str, job_doc: dict[str, Any]) -> dict[str, float]:
    """(d) The upstream worker's design: one item at a time; per item a whole-document put of the
    item and a new job document."""
    job_template = to_dynamo(job_doc)

    def run(client: Any) -> int:
        done = 0
        for page in owner_pages(client, owner):
            for item in page:
                total = int(item["n"]["N"]) + 1
                client.put_item(
                    TableName=TABLE,
                    Item={**item, "n_plus_one": {"N": str(total)}, "status": {"S": "processed"}},
                )
                job_id = f"{job_doc['owner']}.{uuid.uuid4()}"
                client.put_item(
                    TableName=TABLE,
                    Item={
                        **job_template,
                        "object_id": {"S": job_id},
                        "status": {"S": "SUCCEEDED"},
                        "output": to_dynamo({"o": outputs_of(total)})["o"],
                    },
                )
                done += 1
        return done

    return measured(run, split_job_writes=False)  # its job document per item is an item cost


# --- the parts ---------------------------------------------------------------------------------------


def headline(dao: Dao, size: dict[str, Any], results: Results) -> None:
    n, repeats = size["headline"], size["repeats"]
    print(f"\n[headline] {n:,} items, {repeats} interleaved rounds after a warm-up", flush=True)
    owner, warm = new_collection(dao, n), new_collection(dao, size["warmup"])
    for fn in (
        lambda o: run_worker(dao, o, tag_script()),
        floor_run,
        lambda o: run_worker(dao, o, tag_script(), mode="batch"),
        ceiling_run,
    ):
        fn(warm)  # discarded warm-up (JIT-less, but caches, pools and DynamoDB Local's pages)
    kept = interleaved(
        {
            "worker (transaction)": lambda: run_worker(dao, owner, tag_script()),
            "floor (same stream)": lambda: floor_run(owner),
            "worker (batch)": lambda: run_worker(dao, owner, tag_script(), mode="batch"),
            "ceiling (BatchWriteItem)": lambda: ceiling_run(owner),
        },
        repeats,
        warmup=0,
    )
    results.samples["headline"] = kept
    rows = []
    for name, samples in kept.items():
        per = [s["items"] for s in samples]
        rows.append(
            [
                name,
                stats(column(samples, "items_per_s")).text(),
                f"{statistics.median(s['requests'] / i for s, i in zip(samples, per, strict=True)):.3f}",
                f"{statistics.median(s['wcu'] / i for s, i in zip(samples, per, strict=True)):.2f}",
                f"{statistics.median(s['rcu'] / i for s, i in zip(samples, per, strict=True)):.3f}",
                f"{statistics.median(s['cpu_s'] * 1000 / i for s, i in zip(samples, per, strict=True)):.3f}",
            ]
        )
    results.table(
        f"Headline: {n:,} items with write-back, C={CONCURRENCY}, median [min–max] of {repeats}",
        ["run", "items/s", "requests/item", "WCU/item", "RCU/item", "CPU-ms/item"],
        rows,
        "floor = the worker's request stream without the engine; ceiling = unconditional "
        "BatchWriteItem (no receipt guarantee). CPU-ms: this process (the servers run elsewhere). "
        "WCU/item: receipts and write-backs; the job record's own writes (claim, progress, finish) "
        "are counted apart.",
    )
    worker = [s["items_per_s"] for s in kept["worker (transaction)"]]
    floor = [s["items_per_s"] for s in kept["floor (same stream)"]]
    ratios = [w / f for w, f in zip(worker, floor, strict=True)]  # per round: A and B ran side by side
    ratio = stats(ratios)
    results.targets.append(
        at_least(
            f"worker / same-stream floor at {n:,} items",
            ratio.median,
            0.9,
            f"per-round ratios {ratio.text('.3f')}",
        )
    )
    batch = kept["worker (batch)"]
    wcu = statistics.median(s["wcu"] / s["items"] for s in batch)
    results.targets.append(at_most("WCU per item, receipt mode batch", wcu, 2.0))
    tx = kept["worker (transaction)"]
    results.table(
        "Receipt modes side by side (same run)",
        ["mode", "items/s", "WCU/item", "requests/item", "guarantee"],
        [
            [
                "transaction",
                f"{statistics.median(worker):,.0f}",
                f"{statistics.median(s['wcu'] / s['items'] for s in tx):.2f}",
                f"{statistics.median(s['requests'] / s['items'] for s in tx):.3f}",
                "conditional puts; receipt + write-back atomic",
            ],
            [
                "batch",
                f"{statistics.median(column(batch, 'items_per_s')):,.0f}",
                f"{wcu:.2f}",
                f"{statistics.median(s['requests'] / s['items'] for s in batch):.3f}",
                "deterministic keys; one row per item per attempt",
            ],
        ],
    )


def baselines(dao: Dao, size: dict[str, Any], results: Results) -> None:
    n, repeats = size["slow"], size["slow_repeats"]
    print(f"\n[baselines] {n:,} items, {repeats} interleaved rounds after a warm-up", flush=True)
    owner = new_collection(dao, n)
    job_doc = job_item(tag_script(), collection_owner=owner)
    kept = interleaved(
        {
            "worker (transaction)": lambda: run_worker(dao, owner, tag_script()),
            "(c) unbatched per-item program": lambda: unbatched_run(owner),
            "(d) upstream design (one at a time)": lambda: upstream_run(owner, job_doc),
        },
        repeats,
    )
    results.samples["baselines"] = kept
    worker = statistics.median(column(kept["worker (transaction)"], "items_per_s"))
    rows = [
        [
            name,
            stats(column(s, "items_per_s")).text(),
            f"{worker / statistics.median(column(s, 'items_per_s')):.2f}",
            f"{statistics.median(x['requests'] / x['items'] for x in s):.3f}",
            f"{statistics.median(x['wcu'] / x['items'] for x in s):.2f}",
        ]
        for name, s in kept.items()
    ]
    results.table(
        f"Older designs, {n:,} items, median [min–max] of {repeats}",
        ["run", "items/s", "worker ×", "requests/item", "WCU/item"],
        rows,
        "(c) is today's README baseline: unbatched, so most of the worker's lead over it is "
        "batching; (d) writes a whole item and a job document per item, one item at a time.",
    )


def curves(dao: Dao, size: dict[str, Any], results: Results) -> dict[int, str]:
    owners: dict[int, str] = {}
    rows, series = [], {"items/s": [], "CPU-ms/item ×1000": []}
    latency_series: dict[str, list[list[float]]] = {"p50 ms": [], "p99 ms": []}
    for n, repeats in size["curve"]:
        print(f"\n[curves] {n:,} items × {repeats}", flush=True)
        owners[n] = new_collection(dao, n)
        samples = [run_worker(dao, owners[n], tag_script(), latencies=True) for _ in range(repeats)]
        results.samples[f"curve_{n}"] = samples
        s = stats(column(samples, "items_per_s"))
        med = {
            k: statistics.median(
                x[k] / (x["items"] if k in ("requests", "wcu", "rcu", "cpu_s") else 1) for x in samples
            )
            for k in ("requests", "wcu", "rcu", "cpu_s", "p50_ms", "p99_ms")
        }
        rows.append(
            [
                f"{n:,}",
                repeats,
                s.text(),
                f"{med['requests']:.3f}",
                f"{med['wcu']:.2f}",
                f"{med['rcu']:.3f}",
                f"{med['cpu_s'] * 1000:.3f}",
                f"{med['p50_ms']:.2f}",
                f"{med['p99_ms']:.2f}",
            ]
        )
        series["items/s"].append([n, s.median])
        latency_series["p50 ms"].append([n, med["p50_ms"]])
        latency_series["p99 ms"].append([n, med["p99_ms"]])
    results.table(
        "Curves: one job per size, receipt mode transaction, C=8",
        [
            "items",
            "runs",
            "items/s",
            "requests/item",
            "WCU/item",
            "RCU/item",
            "CPU-ms/item",
            "p50 ms",
            "p99 ms",
        ],
        rows,
        "p50/p99: the receipts' duration_ms (one item through the engine). Fewer repeats at "
        "100k items (one run) to stay inside the 30-minute budget.",
    )
    results.plot(
        "items_curve",
        "Throughput by collection size",
        "items",
        "items/s",
        {"items/s": series["items/s"]},
        xlog=True,
    )
    results.plot(
        "latency_curve", "Per-item latency (receipts' duration_ms)", "items", "ms", latency_series, xlog=True
    )
    # the engine's own cost per item inside a collection run
    n = size["curve"][1][0]
    timed = run_worker(dao, owners[n], tag_script(), engine_cost=True)
    per_item_us = timed["engine_s"] / timed["items"] * 1e6
    results.samples["engine_in_collection"] = timed
    results.table(
        "Engine cost inside a collection run",
        ["items", "Engine.run µs/item (summed over threads)", "worker CPU-ms/item"],
        [[f"{n:,}", f"{per_item_us:.0f}", f"{timed['cpu_s'] * 1000 / timed['items']:.3f}"]],
    )
    return owners


def worker_process(
    stack_env: dict[str, str], job_id: str, *, stop_at: Callable[[], bool] | None = None
) -> tuple[int, int, float]:
    """``python -m src.worker`` on ``job_id``: (exit code, peak RSS bytes, CPU seconds); SIGTERM
    once ``stop_at()`` holds.

    The peak is the worker's own ``VmHWM`` read from /proc while it runs (the last reading before it
    exits). Not ``wait4``'s ``ru_maxrss``: Linux keeps the high-water mark of the image a process
    replaced at exec, and the child was forked from this benchmark, so that figure is this process's
    RSS whenever it is the larger (a resumed run's seeded receipts made it look like 285 MB)."""
    env = {
        **os.environ,
        **stack_env,
        "RUN_MODE": "RUN_COLLECTION",
        "JOB_ID": job_id,
        "USERNAME": USERNAME,
        "REGION": localstack.DEFAULT_REGION,
        "DYNAMO_TABLE": TABLE,
        "DYNAMO_STREAMS_TABLE": STREAMS_TABLE,
        "PRIMARY_BUCKET": BUCKET,
        "CONCURRENCY": str(CONCURRENCY),
        "LOG_LEVEL": "WARNING",
        "HEARTBEAT_SECONDS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "src.worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    peak = 0
    signalled = stop_at is None
    while True:  # polled every 50 ms until it exits (VmHWM only grows, so the last reading is the peak)
        peak = max(peak, high_water_mark(proc.pid))
        if not signalled and stop_at is not None and stop_at():
            proc.send_signal(signal.SIGTERM)
            signalled = True
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(0.05)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, peak, usage.ru_utime + usage.ru_stime


def high_water_mark(pid: int) -> int:
    """Peak resident bytes of ``pid`` so far (``VmHWM``), 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def interrupted_job(dao: Dao, owner: str) -> tuple[str, int]:
    """A job as an interrupted first attempt leaves it: FAILED + resumable, attempt 1, and a
    successful receipt (the worker's row shape) for every other item of the collection. Built
    directly rather than by SIGTERM at the right moment, so the resumed run always skips half."""
    job = job_item(tag_script(), collection_owner=owner, status="FAILED", resumable=True, attempt=1)
    dao.docs.put_new(job)
    job_id = str(job["object_id"])
    stream_id, clock = stream_of(job_id), Clock()
    rows = [
        {
            "PutRequest": {
                "Item": receipt_item(stream_id, clock.next(), item["object_id"]["S"], int(item["n"]["N"]) + 1)
            }
        }
        for page in owner_pages(dao.docs.client, owner)
        for index, item in enumerate(page)
        if index % 2 == 0
    ]
    for start in range(0, len(rows), 25):
        pending: dict[str, Any] = {STREAMS_TABLE: rows[start : start + 25]}
        while pending:
            pending = dao.docs.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return job_id, len(rows)


def rss(
    dao: Dao, stack_env: dict[str, str], size: dict[str, Any], owners: dict[int, str], results: Results
) -> None:
    small, large = size["rss"]
    peaks: dict[tuple[str, int], float] = {}
    rows = []
    for n in (small, large):
        owner = owners.get(n) or new_collection(dao, n)
        print(f"\n[rss] {n:,} items: a first run, and a resumed run (half done before)", flush=True)
        first = job_item(tag_script(), collection_owner=owner)
        dao.docs.put_new(first)
        code, peak, cpu = worker_process(stack_env, str(first["object_id"]))
        assert code == 0, f"worker exit code {code}"
        peaks[("first", n)] = peak
        job_id, skipped = interrupted_job(dao, owner)
        code, peak_resumed, _ = worker_process(stack_env, job_id)
        job = dao.docs.get(job_id) or {}
        assert code == 0 and job.get("attempt") == 2, (
            f"resumed worker exit code {code}, {job.get('error_message')}"
        )
        assert job.get("success_count") == n, job
        peaks[("resumed", n)] = peak_resumed
        rows.append(
            [
                f"{n:,}",
                f"{peak / 1e6:.1f}",
                f"{cpu * 1000 / n:.3f}",
                f"{peak_resumed / 1e6:.1f}",
                f"{skipped:,}",
            ]
        )
    results.table(
        "Peak RSS of python -m src.worker",
        ["items", "first run MB", "CPU-ms/item (process)", "resumed run MB", "skipped (done before)"],
        rows,
    )
    for kind in ("first", "resumed"):
        growth = (peaks[(kind, large)] - peaks[(kind, small)]) / (large - small)
        results.targets.append(
            at_most(f"RSS growth per item {small:,} → {large:,} ({kind} run), bytes", growth, 200.0)
        )
    results.samples["rss"] = {f"{k}_{n}": v for (k, n), v in peaks.items()}
    results.plot(
        "rss",
        "Peak RSS of the worker process",
        "items",
        "MB",
        {kind: [[n, peaks[(kind, n)] / 1e6] for n in (small, large)] for kind in ("first", "resumed")},
    )


def io_script() -> Any:
    """Per item: sys.doc.get of the item and sys.blob.get_text of a small object (a GET each), no
    write-back: the I/O the items wait on, not the receipts (measured in the other parts)."""
    return script(
        [
            action("doc", "sys.doc.get"),
            action("blob", "sys.blob.get_text"),
            static("key", f"{NAMESPACE}bench/io-object.txt"),
        ],
        ["mainInput:object_id -> doc:object_id", "key:value -> blob:key"],
    )


def io_scaling(dao: Dao, stack: localstack.LocalStack, size: dict[str, Any], results: Results) -> None:
    n = size["io"]
    levels = (1, 2, 4, 8, 16, 32)
    print(f"\n[io] {n} items per unit of CONCURRENCY, each a DynamoDB GetItem + an S3 GET, 20 ms added "
          "per request", flush=True)
    # n × C items at CONCURRENCY C: every level runs about as long, so the stage's fixed start and
    # tail weigh the same in each rate (320 items at C=16 would last little more than a second).
    owners = {c: new_collection(dao, n * c) for c in levels}
    dao.blobs.client.put_object(Bucket=BUCKET, Key=f"{NAMESPACE}bench/io-object.txt", Body=b"x" * 2048)
    with latency_proxy(stack.dynamodb_port, 0.020) as ddb, latency_proxy(stack.s3_port, 0.020) as s3:
        env = {"AWS_ENDPOINT_URL_DYNAMODB": ddb, "AWS_ENDPOINT_URL_S3": s3}

        def at(c: int) -> Callable[[], dict[str, float]]:
            return lambda: run_worker(dao, owners[c], io_script(), concurrency=c, env=env)

        kept = interleaved({"C=1": at(1), "C=16": at(16)}, size["io_repeats"])
        others = {c: at(c)() for c in levels if c not in (1, 16)}
    results.samples["io"] = {**kept, **{f"C={c}": [s] for c, s in others.items()}}
    by_c = {
        1: statistics.median(column(kept["C=1"], "stage_items_per_s")),
        16: statistics.median(column(kept["C=16"], "stage_items_per_s")),
    }
    by_c.update({c: s["stage_items_per_s"] for c, s in others.items()})
    rows = [
        [c, f"{by_c[c]:,.1f}", f"{by_c[c] / by_c[1]:.1f}", len(kept[f"C={c}"]) if c in (1, 16) else 1]
        for c in sorted(by_c)
    ]
    results.table(
        f"I/O items through a 20 ms proxy, {n} × CONCURRENCY items (items stage: the worker's "
        "items_finished clock)",
        ["CONCURRENCY", "items/s", "× C=1", "runs"],
        rows,
    )
    results.plot(
        "io_scaling",
        "I/O items (DynamoDB GetItem + S3 GET, +20 ms each)",
        "CONCURRENCY",
        "items/s",
        {
            "worker": [[c, by_c[c]] for c in sorted(by_c)],
            "ideal (C × C=1)": [[c, c * by_c[1]] for c in sorted(by_c)],
        },
        xlog=True,
        ylog=True,
    )
    per_round = stats(
        [
            b["stage_items_per_s"] / a["stage_items_per_s"]
            for a, b in zip(kept["C=1"], kept["C=16"], strict=True)
        ]
    )
    results.targets.append(
        at_least(
            "C=16 / C=1 on I/O items, 20 ms per request",
            per_round.median,
            12.0,
            f"per-round ratios {per_round.text('.1f')}",
        )
    )


def fail_script() -> Any:
    """n → add(n, 1) → UPDATE_VALUES n_plus_one, and the item's own ``tag`` as ``status``."""
    return script(
        [action("inc", "sys.math.add"), static("one", 1), node("uv", NT.UPDATE_VALUES)],
        [
            "mainInput:n -> inc:a",
            "one:value -> inc:b",
            "inc:sum -> uv:n_plus_one",
            "mainInput:tag -> uv:status",
            "inc:sum -> mainOutput:sum",
        ],
    )


def failures(dao: Dao, stack: localstack.LocalStack, size: dict[str, Any], results: Results) -> None:
    n = size["failures"]
    print(
        f"\n[failures] {n:,} items: clean, 1 % failing + 1 % refused write-backs, 5 % throttled", flush=True
    )
    big = "x" * 210_000  # written back as status: the item would pass 400 KB, so DynamoDB refuses it

    def failing(i: int) -> dict[str, Any]:
        if i % 100 == 0:
            return {"n": "not a number", "tag": "processed"}
        return {"n": i, "tag": big if i % 100 == 50 else "processed"}

    clean = new_collection(dao, n, lambda i: {"n": i, "tag": "processed"})
    bad = new_collection(dao, n, failing)
    throttled_owner = new_collection(dao, size["throttle"], lambda i: {"n": i, "tag": "processed"})
    kept = interleaved(
        {
            "clean": lambda: run_worker(dao, clean, fail_script()),
            "2 % failing": lambda: run_worker(dao, bad, fail_script()),
            "2 % failing, batch mode": lambda: run_worker(dao, bad, fail_script(), mode="batch"),
        },
        3 if n >= 10000 else 1,
        warmup=0,
    )
    with latency_proxy(stack.dynamodb_port, 0.0, throttle=0.05) as ddb:
        throttled = [run_worker(dao, throttled_owner, fail_script(), env={"AWS_ENDPOINT_URL_DYNAMODB": ddb})]
    direct = [run_worker(dao, throttled_owner, fail_script())]
    results.samples["failures"] = {**kept, "throttled 5 %": throttled, "same, no proxy": direct}
    rows = []
    for name, s in {
        **kept,
        f"throttled 5 % ({size['throttle']:,} items)": throttled,
        f"no throttling ({size['throttle']:,} items)": direct,
    }.items():
        rows.append(
            [
                name,
                stats(column(s, "items_per_s")).text(),
                f"{statistics.median(x['errors'] for x in s):,.0f}",
                f"{statistics.median(x['requests'] / x['items'] for x in s):.3f}",
                f"{statistics.median(x['wcu'] / x['items'] for x in s):.2f}",
            ]
        )
    results.table(
        "Failures and throttling",
        ["run", "items/s", "failed items", "requests/item", "WCU/item"],
        rows,
        "2 % failing = 1 % whose script fails (receipt only) + 1 % whose write-back DynamoDB "
        "refuses (too large): in transaction mode that batch of 50 is rewritten item by item. "
        "Throttled requests are retried by botocore; units count what DynamoDB bills (accepted writes).",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=N",
        help="override one size, e.g. --set io=640 (see sizes())",
    )
    args = parser.parse_args(argv)
    quick = quick_mode(argv) or args.quick
    parts = set(args.only.split(","))
    size = sizes(quick)
    for override in args.set:
        key, _, value = override.partition("=")
        size[key] = int(value)
    results = Results("bench_items", "Runs over many items", quick)
    began = time.perf_counter()
    with bench_stack() as stack:
        dao = make_dao()
        if "headline" in parts:
            headline(dao, size, results)
        if "baselines" in parts:
            baselines(dao, size, results)
        owners = curves(dao, size, results) if "curves" in parts else {}
        if "rss" in parts:
            rss(dao, stack.env, size, owners, results)
        if "io" in parts:
            io_scaling(dao, stack, size, results)
        if "failures" in parts:
            failures(dao, stack, size, results)
    results.notes.append(
        f"bench_items took {time.perf_counter() - began:.0f} s"
        + (" (quick mode: sizes too small to judge the targets)" if quick else "")
    )
    code = results.save()
    return 0 if quick else code


if __name__ == "__main__":
    raise SystemExit(main())
