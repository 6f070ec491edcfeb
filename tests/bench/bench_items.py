"""Runs over many items, measured against a baseline in the same run (issue 4).

    python -m tests.bench.bench_items [--items 20000] [--rss-small 10000] [--rss-large 100000] [--strict]

(a) throughput of a collection run with write-back vs a minimal boto3 program doing the same
    reads and writes at the same concurrency (target ≥ 0.7);
(b) DynamoDB requests per item, counted with a botocore event hook (target ≤ 1.1);
(c) 1,000 items of a 50 ms nap: CONCURRENCY=16 vs CONCURRENCY=1 (target ≥ 12×);
(d) peak RSS of the worker at 100,000 items vs 10,000 (target ≤ 1.15×).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from feaas.dao import Dao
from feaas.settings import Settings
from feaas.stopping import StopSignal
from tests.bench.common import BUCKET, STREAMS_TABLE, TABLE, Row, bench_stack, make_dao, print_table
from tests.support.collections import nap_script, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, USERNAME, job_item

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 8


def settings_for(job_id: str, concurrency: int) -> Settings:
    return Settings(run_mode="RUN_COLLECTION", job_id=job_id, username=USERNAME, region="us-east-1",
                    dynamo_table=TABLE, dynamo_streams_table=STREAMS_TABLE, primary_bucket=BUCKET,
                    concurrency=concurrency, heartbeat_seconds=5, log_format="json", log_level="WARNING")


def new_collection(dao: Dao, count: int) -> str:
    owner = f"{NAMESPACE}bench-{uuid.uuid4().hex[:8]}"
    seed_collection(dao, owner, count)
    return owner


def run_worker_in_process(dao: Dao, owner: str, script: Any, concurrency: int) -> tuple[float, int, int]:
    """Run the real worker code (claim → run → finish) in this process, counting DynamoDB requests."""
    import feaas.dao as dao_module
    import src.worker as worker

    counter = {"n": 0}
    lock = threading.Lock()

    def count(**_: Any) -> None:
        with lock:
            counter["n"] += 1

    real = dao_module.make_clients

    def counting_clients(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        made.dynamodb.meta.events.register("before-send.dynamodb", count)
        return made

    item = job_item(script, collection_owner=owner)
    dao.docs.put_new(item)
    dao_module.make_clients = counting_clients  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        code = worker.run(settings_for(item["object_id"], concurrency), StopSignal())
        elapsed = time.perf_counter() - began
    finally:
        dao_module.make_clients = real  # type: ignore[assignment]
    assert code == 0, f"worker exit code {code}"
    job = dao.docs.get(item["object_id"]) or {}
    return elapsed, counter["n"], int(job.get("success_count", 0))


def run_baseline(owner: str, concurrency: int) -> tuple[float, int]:
    """A minimal boto3 program: query the owner index page by page; per item one conditional
    receipt put and one write-back update, ``concurrency`` items at a time."""
    client = boto3.client("dynamodb", region_name="us-east-1",
                          config=Config(max_pool_connections=concurrency + 4, retries={"mode": "standard"}))
    stream_id = f"{NAMESPACE}baseline-{uuid.uuid4().hex[:8]}"
    clock = {"ts": int(time.time() * 1000)}
    lock = threading.Lock()

    def next_ts() -> int:
        with lock:
            clock["ts"] += 1
            return clock["ts"]

    def one(item: dict[str, Any]) -> None:
        oid = item["object_id"]["S"]
        n = int(item["n"]["N"])
        client.update_item(TableName=TABLE, Key={"object_id": {"S": oid}},
                           UpdateExpression="SET #a = :a, #s = :s",
                           ConditionExpression="attribute_exists(object_id)",
                           ExpressionAttributeNames={"#a": "n_plus_one", "#s": "status"},
                           ExpressionAttributeValues={":a": {"N": str(n + 1)}, ":s": {"S": "processed"}})
        client.put_item(TableName=STREAMS_TABLE,
                        Item={"stream_id": {"S": stream_id}, "timestamp": {"N": str(next_ts())},
                              "object_id": {"S": oid}, "success": {"BOOL": True}},
                        ConditionExpression="attribute_not_exists(#t)",
                        ExpressionAttributeNames={"#t": "timestamp"})

    began = time.perf_counter()
    done = 0
    kwargs: dict[str, Any] = {"TableName": TABLE, "IndexName": "ownerIndex",
                              "KeyConditionExpression": "#o = :o",
                              "ExpressionAttributeNames": {"#o": "owner"},
                              "ExpressionAttributeValues": {":o": {"S": owner}}, "Limit": 500}
    with ThreadPoolExecutor(concurrency) as pool:
        while True:
            page = client.query(**kwargs)
            list(pool.map(one, page["Items"]))
            done += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return time.perf_counter() - began, done


def peak_rss_mb(stack_env: dict[str, str], owner: str, script: Any, dao: Dao) -> float:
    item = job_item(script, collection_owner=owner)
    dao.docs.put_new(item)
    env = {**os.environ, **stack_env, "RUN_MODE": "RUN_COLLECTION", "JOB_ID": item["object_id"],
           "USERNAME": USERNAME,
           "REGION": "us-east-1", "DYNAMO_TABLE": TABLE, "DYNAMO_STREAMS_TABLE": STREAMS_TABLE,
           "PRIMARY_BUCKET": BUCKET, "CONCURRENCY": str(CONCURRENCY), "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "src.worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"worker exit code {proc.returncode}"
    return usage.ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--nap-items", type=int, default=1000)
    parser.add_argument("--rss-small", type=int, default=10000)
    parser.add_argument("--rss-large", type=int, default=100000)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    rows: list[Row] = []
    with bench_stack() as stack:
        dao = make_dao()
        # (a) + (b)
        worker_owner, baseline_owner = new_collection(dao, args.items), new_collection(dao, args.items)
        base_s, base_n = run_baseline(baseline_owner, CONCURRENCY)
        work_s, requests, work_n = run_worker_in_process(dao, worker_owner, tag_script(), CONCURRENCY)
        assert work_n == args.items == base_n, (work_n, base_n)
        ratio = (work_n / work_s) / (base_n / base_s)
        rows.append(Row(f"(a) {args.items} items + write-back, C={CONCURRENCY}",
                        f"{work_n / work_s:,.0f} items/s",
                        f"{base_n / base_s:,.0f} items/s", ratio, ">= 0.7", ratio >= 0.7))
        per_item = requests / work_n
        rows.append(Row("(b) DynamoDB requests per item", f"{requests} requests", f"{work_n} items", per_item,
                        "<= 1.1", per_item <= 1.1))
        # (c)
        nap = nap_script(0.05)
        slow_s, _, _ = run_worker_in_process(dao, new_collection(dao, args.nap_items), nap, 1)
        fast_s, _, _ = run_worker_in_process(dao, new_collection(dao, args.nap_items), nap, 16)
        speedup = slow_s / fast_s
        rows.append(Row(f"(c) {args.nap_items} x 50 ms nap, C=16 vs C=1", f"{fast_s:.2f} s",
                        f"{slow_s:.2f} s", speedup, ">= 12", speedup >= 12))
        # (d)
        small = peak_rss_mb(stack.env, new_collection(dao, args.rss_small), tag_script(), dao)
        large = peak_rss_mb(stack.env, new_collection(dao, args.rss_large), tag_script(), dao)
        growth = large / small
        rows.append(Row(f"(d) peak RSS {args.rss_large} vs {args.rss_small} items", f"{large:.1f} MB",
                        f"{small:.1f} MB", growth, "<= 1.15", growth <= 1.15))
    ok = print_table("Runs over many items (ratios measured in this run)", rows)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    raise SystemExit(main())
