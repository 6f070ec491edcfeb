#!/usr/bin/env bash
# Local DynamoDB (DynamoDB Local) + S3 (SeaweedFS) on 127.0.0.1, no Docker.
#
#   eval "$(test_scripts/local_stack.sh start --create-resources)"   # start, export AWS_* vars
#   eval "$(test_scripts/local_stack.sh env)"                        # re-export for a new shell
#   test_scripts/local_stack.sh stop
#
# Runs `.venv/bin/python -m tests.support.localstack` (building .venv with bootstrap.sh when it
# is missing). Status goes to stderr; stdout is only `export` lines.
#
# Failure and eval: `eval "$(...)"` ignores the exit code of the command inside, so a failed
# start would silently export nothing. On failure this script therefore prints the reason on
# stderr and, on stdout, the single line `false`: the eval then fails, which stops a `set -e`
# script and leaves $? non-zero in an interactive shell (without closing it, as `exit` would).
# Downloads are cached in $PLUS_WORKER_CACHE (default ~/.cache/plus-worker).
set -euo pipefail

usage() {
    # The options of `python -m tests.support.localstack` (kept in step by tests/ops).
    cat <<'USAGE'
Usage: test_scripts/local_stack.sh start|stop|env [options]

  start      start the stack (or reuse the one running in --state-dir); prints export lines
  stop       stop the stack
  env        print the export lines of the running stack

Options (all commands):
  --state-dir DIR                  where the stack keeps its state (default .local-stack)
Options of start:
  --persistent                     keep data across restarts (-dbPath)
  --create-resources               create the tables and the bucket
  --table NAME                     documents table (default plus-docs)
  --streams-table NAME             streams table (default plus-streams)
  --bucket NAME                    bucket (default plus-bucket)
  --key-attribute NAME             documents table key (default object_id)
  --owner-index NAME               owner index (default ownerIndex)
  --owner-index-projection ALL|KEYS_ONLY
                                   owner index projection (default ALL)
  --dynamodb-port PORT             DynamoDB Local port (default: a free one)
  --s3-port PORT                   SeaweedFS S3 port (default: a free one)
  --help                           show this help

Use with eval: eval "$(test_scripts/local_stack.sh start --create-resources)".
On failure stdout is `false`, so the eval fails too.
USAGE
}

# fail CODE MESSAGE: report on stderr, and make an enclosing `eval "$(...)"` fail (see the header).
fail() {
    echo "local_stack.sh: error: $2" >&2
    echo false
    exit "$1"
}

command="${1:-}"
case "$command" in
    start | stop | env) shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; fail 2 "expected start, stop or env, got: '$command'" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ ! -x .venv/bin/python ]]; then
    test_scripts/bootstrap.sh >&2 || fail $? "could not build .venv"
fi
code=0
out="$(.venv/bin/python -m tests.support.localstack "$command" "$@")" || code=$?
[[ $code -eq 0 ]] || fail "$code" "$command failed (exit $code), see the messages above"
[[ -z "$out" ]] || printf '%s\n' "$out"
