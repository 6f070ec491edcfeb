#!/usr/bin/env bash
# Local DynamoDB (DynamoDB Local) + S3 (SeaweedFS) on 127.0.0.1, no Docker.
#
#   eval "$(test_scripts/local_stack.sh start --create-resources)"   # start, export AWS_* vars
#   eval "$(test_scripts/local_stack.sh env)"                        # re-export for a new shell
#   test_scripts/local_stack.sh stop
#
# Options after the command go to `python -m tests.support.localstack` (see --help there):
# --state-dir DIR (default .local-stack in the repo root), --persistent, --create-resources,
# --table/--streams-table/--bucket. Status goes to stderr; stdout is only `export` lines.
# Downloads are cached in $PLUS_WORKER_CACHE (default ~/.cache/plus-worker).
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|env [options]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
    start | stop | env) ;;
    -h | --help) usage ;;
    *) usage ;;
esac

cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m tests.support.localstack "$command" "$@"
