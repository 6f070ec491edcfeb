#!/usr/bin/env bash
# test_scripts/success.sh — run a job that must succeed and check its final record.
# test_scripts/fail.sh runs this script with --scenario fail (a job that must fail).
#
# Everything runs with .venv/bin/python (built by bootstrap.sh when missing).
# Local (default): `python test_scripts/demo.py --scenario success|fail` starts the local stack,
# runs the worker and prints the final job record as JSON on its last stdout line.
# AWS (--aws): writes a job document to DYNAMO_TABLE, launches it with run-task.sh and reads the
# final record back. Expected: SUCCEEDED and exit 0 / FAILED with a message and exit 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$ROOT/.venv/bin/python"
DEMO="${DEMO:-$ROOT/test_scripts/demo.py}"
PROG=success.sh
# shellcheck source=test_scripts/ops_common.sh
source "$ROOT/test_scripts/ops_common.sh"

usage() {
    cat <<'USAGE'
Usage: test_scripts/success.sh [--aws] [--env-file PATH] [--username USER] [--hostname HOST]
       test_scripts/fail.sh    (same options)

  --aws             run in AWS through run-task.sh (needs ./setup.sh and ./deploy.sh first)
  --env-file PATH   settings written by setup.sh (default ./.env.deploy)
  --username USER   job user for --aws (default ops-test@example.com)
  --hostname HOST   job hostname for --aws (default plus_example_com)
  --help            show this help
USAGE
}

# The check's own failures exit 1, like a job that ended wrong.
EX_CHECK=1

SCENARIO=success
AWS=0
ENV_FILE="${ENV_FILE:-$ROOT/.env.deploy}"
TEST_USER=ops-test@example.com
TEST_HOST=plus_example_com
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scenario) SCENARIO="${2:-}"; shift 2 ;;
        --aws) AWS=1; shift ;;
        --env-file) ENV_FILE="${2:-}"; shift 2 ;;
        --username) TEST_USER="${2:-}"; shift 2 ;;
        --hostname) TEST_HOST="${2:-}"; shift 2 ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
case "$SCENARIO" in
    success) WANT_STATUS=SUCCEEDED; WANT_CODE=0 ;;
    fail) PROG=fail.sh; WANT_STATUS=FAILED; WANT_CODE=1 ;;
    *) die "$EX_CHECK" "unknown scenario: $SCENARIO" ;;
esac
[[ -x "$PYTHON" ]] || "$ROOT/test_scripts/bootstrap.sh" || die "$EX_CHECK" "could not build $ROOT/.venv"
# The venv's tools first: its aws CLI for --aws (here and in run-task.sh).
export PATH="$ROOT/.venv/bin:$PATH"

# check_record CODE RECORD_JSON: compare the exit code and the final job record with the scenario.
check_record() {
    local code="$1" record="$2"
    WANT_STATUS="$WANT_STATUS" "$PYTHON" -c '
import json, os, sys
text = sys.argv[1].strip()
start = text.rfind("\n{\n")  # the demo ends with the record as indented JSON
record = json.loads(text[start + 1:] if start >= 0 else text.splitlines()[-1])
status = record.get("status") or "INITIALIZING"
want = os.environ["WANT_STATUS"]
problems = []
if status != want:
    problems.append(f"status {status}, expected {want}")
if want == "FAILED" and not record.get("error_message"):
    problems.append("no error_message on a FAILED job")
if want == "SUCCEEDED" and record.get("error_message") and record.get("outcome") != "PARTIAL" \
        and record.get("error_message") != "No items found":
    problems.append("error_message on a SUCCEEDED job: " + record["error_message"])
print("job", record.get("object_id"), status, record.get("error_message", ""))
sys.exit("; ".join(problems) if problems else 0)
' "$record" || die "$EX_CHECK" "wrong final record"
    [[ "$code" == "$WANT_CODE" ]] || die "$EX_CHECK" "exit code $code, expected $WANT_CODE"
    say "OK ($WANT_STATUS, exit code $code)"
}

if [[ $AWS -eq 0 ]]; then
    [[ -f "$DEMO" ]] || die "$EX_CHECK" "$DEMO not found"
    out="$(mktemp)"
    trap 'rm -f "$out"' EXIT
    code=0
    (cd "$ROOT" && "$PYTHON" "$DEMO" --scenario "$SCENARIO") | tee "$out" || code=$?
    [[ -s "$out" ]] || die "$EX_CHECK" "the demo printed nothing"
    check_record "$code" "$(cat "$out")"
    exit 0
fi

# ---- in AWS ----------------------------------------------------------------------------------
[[ -f "$ENV_FILE" ]] || die "$EX_CHECK" "$ENV_FILE not found: run ./setup.sh first"
declare -A CFG=()
read_settings "$ENV_FILE"
REGION="${CFG[REGION]:?REGION missing from $ENV_FILE}"
TABLE="${CFG[DYNAMO_TABLE]:?DYNAMO_TABLE missing from $ENV_FILE}"

if [[ "$SCENARIO" == success ]]; then
    # One action adding two integer defaults; its sum becomes the job's output.
    script='{"label": "ops success", "nodes": [{"ntype": "ACTION", "unique_id": "add",
        "action_id": "sys.math.add",
        "inputs": [{"var_name": "a", "ptype": "INTEGER", "idefault": "2"},
                   {"var_name": "b", "ptype": "INTEGER", "idefault": "3"}],
        "outputs": [{"var_name": "sum", "ptype": "INTEGER"}]}],
        "links": [{"source": "add", "sourceHandle": "sum", "target": "mainOutput", "targetHandle": "sum"}]}'
else
    script='{"label": "ops fail", "nodes": [{"ntype": "ACTION", "unique_id": "boom",
        "action_id": "sys.debug.fail",
        "inputs": [{"var_name": "message", "ptype": "STRING", "sdefault": "failing on purpose"}]}]}'
fi
job_id="$(cd "$ROOT" && "$PYTHON" -m feaas.launch create-job --table "$TABLE" --region "$REGION" \
    --hostname "$TEST_HOST" --username "$TEST_USER" --script-json "$script" --label "ops $SCENARIO")"
say "job $job_id"
code=0
"$ROOT/run-task.sh" --env-file "$ENV_FILE" --run-mode RUN_SCRIPT --job-id "$job_id" \
    --username "$TEST_USER" || code=$?
key="$("$PYTHON" -c 'import json, sys; print(json.dumps({"object_id": {"S": sys.argv[1]}}))' "$job_id")"
record="$(aws --region "$REGION" --output json dynamodb get-item --table-name "$TABLE" --key "$key" \
    --consistent-read | "$PYTHON" -c '
import json, sys
from boto3.dynamodb.types import TypeDeserializer
item = json.load(sys.stdin).get("Item") or {}
d = TypeDeserializer()
print(json.dumps({k: d.deserialize(v) for k, v in item.items()}, default=str))')"
check_record "$code" "$record"
