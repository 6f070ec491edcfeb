"""Start-up benchmark (issue 14): ``python -m tests.bench.bench_start [--runs N] [--host-only]``.

From process start to the job being RUNNING: the worker (``python -m src.worker``: settings,
logging, the storage preflight, the conditional claim and its row in the index of held jobs; the job
is read before the claim only when its id is outside the task's namespace, not the case here)
against a bare boto3 script that reads the job (GetItem) and claims it (UpdateItem) and nothing
else. Each process is started fresh on a new job; the clock stops when its "claimed" line arrives
on its stdout (the worker's ``job_claimed`` log line, the script's own print), so both are timed
the same way. Medians of N runs (default 7), on the host and in the container (the image built from
this checkout, hardened as in production; the container's own start is paid by both). Target:
worker ≤ 1.5× the bare script; exits 1 above it. The title gives the machine's load average at the
end: other work on a shared machine widens the spread of both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence

from tests.bench.common import BUCKET, STREAMS_TABLE, TABLE, Row, bench_stack, make_dao, print_table
from tests.support import container, localstack
from tests.support.scripts import HOSTNAME, USERNAME, add_and_nap_script, job_item

TARGET = 1.5

#: The baseline: what any program must do to claim a job (read it, then a conditional update).
BARE_SCRIPT = """
import os, time, boto3
table, job_id = os.environ["DYNAMO_TABLE"], os.environ["JOB_ID"]
client = boto3.client("dynamodb", region_name=os.environ["REGION"])
key = {"object_id": {"S": job_id}}
client.get_item(TableName=table, Key=key, ConsistentRead=True)
client.update_item(TableName=table, Key=key, UpdateExpression="SET #s = :running, started_at = :now",
                   ConditionExpression="attribute_not_exists(#s) OR #s = :init",
                   ExpressionAttributeNames={"#s": "status"},
                   ExpressionAttributeValues={":running": {"S": "RUNNING"}, ":init": {"S": "INITIALIZING"},
                                              ":now": {"N": str(int(time.time()))}})
print("job_claimed", flush=True)
"""


def job_env(job_id: str, stack: localstack.LocalStack) -> dict[str, str]:
    env = {k: v for k, v in stack.env.items() if k.startswith("AWS_")}
    env.update({"RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": USERNAME,
                "REGION": localstack.DEFAULT_REGION, "DYNAMO_TABLE": TABLE,
                "DYNAMO_STREAMS_TABLE": STREAMS_TABLE, "PRIMARY_BUCKET": BUCKET,
                "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    return env


def time_to_claim(command: Sequence[str], env: dict[str, str]) -> float:
    """Seconds from starting ``command`` to its first stdout line mentioning ``job_claimed``."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    claimed = None
    for line in proc.stdout:
        if "job_claimed" in line:
            claimed = time.perf_counter() - started
            break
    proc.stdout.read()
    proc.wait(timeout=120)
    if claimed is None:
        raise RuntimeError(f"{command[0]} never claimed the job (exit {proc.returncode}): "
                           f"{proc.stderr.read()[-2000:]}")
    return claimed


def compare(runs: int, worker: Callable[[dict[str, str]], list[str]],
            bare: Callable[[dict[str, str]], list[str]], stack: localstack.LocalStack,
            base_env: dict[str, str]) -> tuple[float, float]:
    dao = make_dao()
    worker_s: list[float] = []
    bare_s: list[float] = []
    for i in range(runs + 1):  # the first pair warms the page cache and is not counted
        for measure, samples in ((worker, worker_s), (bare, bare_s)):
            item = job_item(add_and_nap_script(0), hostname=HOSTNAME, input_data={"a": 1, "b": 2})
            dao.docs.put_new(item)
            env = {**base_env, **job_env(str(item["object_id"]), stack)}
            elapsed = time_to_claim(measure(env), env)
            if i:
                samples.append(elapsed)
    return statistics.median(worker_s), statistics.median(bare_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_start")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--host-only", action="store_true", help="skip the container")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    with bench_stack() as stack:
        host_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(container.ROOT)}
        w, b = compare(args.runs, lambda env: [sys.executable, "-m", "src.worker"],
                       lambda env: [sys.executable, "-c", BARE_SCRIPT], stack, host_env)
        rows.append(Row("start → RUNNING, host", f"{w * 1000:.0f} ms", f"{b * 1000:.0f} ms", w / b,
                        f"≤ {TARGET}×", w / b <= TARGET))
        if not args.host_only:
            eng = container.engine()
            image = container.build()

            def in_container(entry: list[str]) -> Callable[[dict[str, str]], list[str]]:
                def command(env: dict[str, str]) -> list[str]:
                    names = sorted(job_env("", stack))
                    name = f"bench-{uuid.uuid4().hex[:8]}"
                    return [eng.command, *container.run_args(image, names, name=name, extra=entry)]
                return command

            cenv = dict(eng.environ())
            w, b = compare(args.runs, lambda env: in_container([])(env),
                           lambda env: [*in_container(["--entrypoint", "python"])(env), "-c", BARE_SCRIPT],
                           stack, cenv)
            rows.append(Row("start → RUNNING, container", f"{w * 1000:.0f} ms", f"{b * 1000:.0f} ms", w / b,
                            f"≤ {TARGET}×", w / b <= TARGET))
    load = os.getloadavg()[0]
    ok = print_table(f"Start-up: process start to job RUNNING, median of {args.runs} (worker vs bare boto3 "
                     f"GetItem + UpdateItem; load average {load:.1f} on {os.cpu_count()} cores)", rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
