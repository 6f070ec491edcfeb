"""Live controls of a running collection run (issue 17 item 4), measured on a worker process.

    python -m tests.bench.bench_controls [--items 3000] [--nap 0.05] [--window 4]

One run of 50 ms nap items started with CONCURRENCY=4 and HEARTBEAT_SECONDS=1; while it runs the
job record gets ``request_pause``, ``concurrency = 16`` and the pause lifted, as an operator would.

(a) throughput after ``concurrency`` goes from 4 to 16 vs before, receipts counted over the same
    window (target ≥ 3.0×; 4× is the ideal);
(b) receipts written while paused, once ``paused = true`` is on the record (target 0);
(c) each change applied within one heartbeat: the worker's ``control_changed`` log line vs the
    moment the control was written (target ≤ one period + 0.5 s for the scheduler).

Exits 1 when a target is missed (and when the run itself fails).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from feaas.dao import Dao, Update
from tests.bench.bench_items import new_collection
from tests.bench.common import BUCKET, STREAMS_TABLE, TABLE, Row, bench_stack, make_dao, print_table
from tests.support.collections import nap_script
from tests.support.scripts import NAMESPACE, USERNAME, job_item

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 1.0


def wait_for(predicate: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached in time")
        time.sleep(0.05)


def receipt_count(dao: Dao, stream_id: str) -> int:
    return dao.streams.count(stream_id)


def rate(dao: Dao, stream_id: str, window_s: float) -> float:
    """Receipts per second over ``window_s``."""
    before, began = receipt_count(dao, stream_id), time.monotonic()
    time.sleep(window_s)
    return (receipt_count(dao, stream_id) - before) / (time.monotonic() - began)


def write_control(dao: Dao, job_id: str, **values: Any) -> float:
    """Write controls as an operator does; returns the epoch time of the write."""
    dao.docs.update(job_id, Update(set=values))
    return time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--nap", type=float, default=0.05)
    parser.add_argument("--window", type=float, default=4.0, help="seconds each throughput is counted over")
    args, _ = parser.parse_known_args()  # bench.sh passes every benchmark the same arguments
    rows: list[Row] = []
    with bench_stack() as stack:
        dao = make_dao()
        owner = new_collection(dao, args.items)
        item = job_item(nap_script(args.nap), collection_owner=owner)
        dao.docs.put_new(item)
        job_id = item["object_id"]
        stream_id = f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"
        env = {**os.environ, **stack.env, "RUN_MODE": "RUN_COLLECTION", "JOB_ID": job_id,
               "USERNAME": USERNAME, "REGION": "us-east-1", "DYNAMO_TABLE": TABLE,
               "DYNAMO_STREAMS_TABLE": STREAMS_TABLE,
               "PRIMARY_BUCKET": BUCKET, "CONCURRENCY": "4", "HEARTBEAT_SECONDS": str(HEARTBEAT_S),
               "LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "src.worker"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: receipt_count(dao, stream_id) >= 40)
            slow = rate(dao, stream_id, args.window)
            written = {"pause": write_control(dao, job_id, request_pause=True)}
            wait_for(lambda: (dao.docs.get(job_id) or {}).get("paused") is True)
            paused_from = receipt_count(dao, stream_id)
            time.sleep(2 * HEARTBEAT_S)
            while_paused = receipt_count(dao, stream_id) - paused_from
            written["concurrency"] = write_control(dao, job_id, concurrency=16)
            wait_for(lambda: (dao.docs.get(job_id) or {}).get("active_concurrency") == 16)
            written["resume"] = write_control(dao, job_id, request_pause=False)
            time.sleep(1.0)  # the resumed run reaches 16 in flight
            fast = rate(dao, stream_id, args.window)
            out, _ = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    if proc.returncode != 0:
        print(out[-3000:])
        print(f"worker exit code {proc.returncode}")
        return 1
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    applied = [datetime.fromisoformat(e["ts"]).timestamp()
               for e in events if e["event"] == "control_changed"]
    ratio = fast / slow if slow else 0.0
    rows.append(Row("(a) items/s at concurrency 16 vs 4", f"{fast:,.1f} items/s", f"{slow:,.1f} items/s",
                    ratio, ">= 3.0", ratio >= 3.0))
    rows.append(Row(f"(b) receipts during {2 * HEARTBEAT_S:g} s paused", f"{while_paused} receipts", "0",
                    float(while_paused), "== 0", while_paused == 0))
    limit = HEARTBEAT_S + 0.5
    for (name, at), seen in zip(written.items(), applied, strict=False):
        delay = seen - at
        rows.append(Row(f"(c) {name} applied after the write", f"{delay:.2f} s", f"{HEARTBEAT_S:g} s period",
                        delay / HEARTBEAT_S, f"<= {limit:g} s", delay <= limit))
    if len(applied) != len(written):
        print(f"expected {len(written)} control_changed lines, found {len(applied)}")
        return 1
    ok = print_table("Live controls (one worker, 50 ms naps, heartbeat every 1 s)", rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
