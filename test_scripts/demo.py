"""Run one real job on the local stack and print its final record (see test_scripts/demo.sh).

stdout is the final job record as indented JSON (the summary `python -m feaas.launch show-job`
prints); the worker's log goes to stderr; the exit code is the worker's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feaas.dao import Documents, make_clients  # noqa: E402
from feaas.jobview import job_summary  # noqa: E402
from tests.support import localstack  # noqa: E402
from tests.support.scripts import USERNAME, action, add_and_nap_script, job_item, script  # noqa: E402

TABLE, STREAMS_TABLE, BUCKET = "plus-docs", "plus-streams", "plus-bucket"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=("success", "fail"), default="success")
    parser.add_argument("--state-dir", default=str(ROOT / ".local-stack"))
    parser.add_argument("--keep-stack", action="store_true", help="leave the local stack running afterwards")
    args = parser.parse_args()

    state_dir = Path(args.state_dir)
    try:
        stack = localstack.load(state_dir) if localstack.is_running(localstack.load(state_dir)) else None
    except (localstack.LocalStackError, ValueError, KeyError, TypeError):  # no stack.json yet, or a stale one
        stack = None
    started_here = stack is None
    if stack is None:
        print(f"starting the local stack in {state_dir} ...", file=sys.stderr)
        stack = localstack.start(state_dir)
    try:
        localstack.create_resources(stack.env, table=TABLE, streams_table=STREAMS_TABLE, bucket=BUCKET)
        os.environ.update(stack.env)
        docs = Documents(make_clients(stack.region).dynamodb, TABLE, "object_id", "ownerIndex")
        if args.scenario == "success":  # adds two numbers, naps a moment
            item = job_item(add_and_nap_script(1.0), input_data={"a": 40, "b": 2}, label="demo: add and nap")
        else:
            item = job_item(script([action("boom", "sys.debug.fail",
                                           message="this demo job fails on purpose")]),
                            label="demo: failing job")
        docs.put_new(item)
        job_id = item["object_id"]
        print(f"job {job_id} written; running the worker ...", file=sys.stderr)
        env = {**os.environ, **stack.env, "RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": USERNAME,
               "REGION": stack.region, "DYNAMO_TABLE": TABLE, "DYNAMO_STREAMS_TABLE": STREAMS_TABLE,
               "PRIMARY_BUCKET": BUCKET, "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
               "HEARTBEAT_SECONDS": "1"}
        code = subprocess.call([sys.executable, "-m", "src.worker"], cwd=ROOT, env=env, stdout=sys.stderr)
        final = docs.get(job_id)
        print(f"worker exit code {code}; final job record:", file=sys.stderr)
        print(json.dumps(job_summary(final or {}), indent=2, default=str, ensure_ascii=False))
        return code
    finally:
        if started_here and not args.keep_stack:
            localstack.stop(stack)


if __name__ == "__main__":
    raise SystemExit(main())
