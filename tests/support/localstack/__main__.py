"""The command line: ``python -m tests.support.localstack start|stop|env [options]``.

Status goes to stderr; stdout is only ``export`` lines (``start`` and ``env``), for ``eval``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from tests.support.localstack.resources import create_resources
from tests.support.localstack.servers import is_running, start, stop
from tests.support.localstack.stack import STACK_FILE, LocalStack, LocalStackError, load


def _exports(stack: LocalStack) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in stack.env.items())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.localstack",
        description="Local DynamoDB + S3 (SeaweedFS) on 127.0.0.1. "
        "`start` and `env` print `export VAR=value` lines for eval.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start the stack (or reuse the one running in --state-dir)")
    p_stop = sub.add_parser("stop", help="stop the stack")
    p_env = sub.add_parser("env", help="print the environment of the running stack")
    state_dir = os.environ.get("PLUS_WORKER_STACK_DIR", ".local-stack")
    for p in (p_start, p_stop, p_env):
        p.add_argument("--state-dir", default=state_dir, type=Path,
                       help="where the stack keeps its data and pids "
                            "(default: $PLUS_WORKER_STACK_DIR or .local-stack)")
    p_start.add_argument("--persistent", action="store_true", help="keep data across restarts (-dbPath)")
    p_start.add_argument("--create-resources", action="store_true", help="create the tables and the bucket")
    p_start.add_argument("--table", default="plus-docs")
    p_start.add_argument("--streams-table", default="plus-streams")
    p_start.add_argument("--bucket", default="plus-bucket")
    p_start.add_argument("--key-attribute", default="object_id")
    p_start.add_argument("--owner-index", default="ownerIndex")
    p_start.add_argument("--owner-index-projection", default="ALL", choices=["ALL", "KEYS_ONLY"])
    p_start.add_argument("--dynamodb-port", type=int)
    p_start.add_argument("--s3-port", type=int)
    return parser


def _start(args: argparse.Namespace) -> LocalStack:
    """The stack running in ``--state-dir``, started when there is none (a dead one is cleared)."""
    if (args.state_dir / STACK_FILE).exists():
        existing = load(args.state_dir)
        if is_running(existing):
            print(f"local stack already running in {existing.state_dir}", file=sys.stderr)
            return existing
        stop(existing)
    began = time.monotonic()
    stack = start(args.state_dir, persistent=args.persistent, dynamodb_port=args.dynamodb_port,
                  s3_port=args.s3_port)
    print(
        f"local stack up in {time.monotonic() - began:.1f} s: DynamoDB {stack.dynamodb_endpoint} "
        f"(pid {stack.dynamodb_pid}), S3 {stack.s3_endpoint} (pid {stack.s3_pid}); "
        f"state in {stack.state_dir}",
        file=sys.stderr,
    )
    return stack


def _create_resources(stack: LocalStack, args: argparse.Namespace) -> None:
    create_resources(
        stack.env,
        table=args.table,
        streams_table=args.streams_table,
        bucket=args.bucket,
        key_attribute=args.key_attribute,
        owner_index=args.owner_index,
        owner_index_projection=args.owner_index_projection,
    )
    print(f"resources: table {args.table}, streams table {args.streams_table}, bucket {args.bucket}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            stack = _start(args)
            if args.create_resources:
                _create_resources(stack, args)
            sys.stdout.write(_exports(stack))
        elif args.command == "stop":
            stop(args.state_dir)
            print(f"local stack in {args.state_dir} stopped", file=sys.stderr)
        elif args.command == "env":
            stack = load(args.state_dir)
            if not is_running(stack):
                print(f"warning: the local stack in {args.state_dir} is not (fully) running", file=sys.stderr)
            sys.stdout.write(_exports(stack))
    except LocalStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
