#!/usr/bin/env bash
# run-task.sh — launch the worker on Fargate for one job, wait for it, show its logs, and exit
# with the container's exit code (SPEC §1.2). Reads .env.deploy written by setup.sh.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=run-task
# shellcheck source=test_scripts/ops_common.sh
source "$SCRIPT_DIR/test_scripts/ops_common.sh"

usage() {
    cat <<'USAGE'
Usage: ./run-task.sh --job-id JOB_ID --username USER [options]
       ./run-task.sh --redrive JOB_ID --username USER [options]
       ./run-task.sh --batch N --job-id JOB_ID --username USER [options]
       ./run-task.sh --run-mode REGISTER_ACTIONS [--env PLUS_HOSTNAME=host] [options]

  --run-mode MODE            RUN_JOB (default), RUN_SCRIPT, RUN_COLLECTION, RUN_ACTION,
                             RUN_STREAM, RUN_FILES, RUN_PLUSSCRIPT or REGISTER_ACTIONS
                             (publishes the action catalogue: no job, no user)
  --job-id JOB_ID            job document id ({hostname}/{username}/job.{uuid}); required
                             except for REGISTER_ACTIONS
  --username USER            user who started the job; required except for REGISTER_ACTIONS
  --redrive JOB_ID           create a new job over only the items whose latest receipt failed in
                             the finished run JOB_ID (same script and settings; the new job gets
                             parent_job_id, the old one redriven_by) and launch it with RUN_JOB.
                             Refused (exit 64, nothing created) when JOB_ID is still running or
                             was interrupted (relaunch it to resume instead), belongs to another
                             user, was already redriven, or has no failed items. Needs
                             DYNAMO_TABLE, DYNAMO_STREAMS_TABLE and PRIMARY_BUCKET in the env file
                             and access to them (python -m feaas.launch redrive does the same
                             without launching)
  --collection-owner OWNER   owner of the collection's documents (RUN_COLLECTION)
  --stream-id ID             stream to process (RUN_STREAM)
  --action-id ID             action to run (RUN_ACTION), stored script's document id
                             (RUN_PLUSSCRIPT)
  --action-input-json JSON   the action's or script's inputs as a JSON object
  --add-tasks N              start N tasks on a many-item job (RUN_COLLECTION, RUN_STREAM,
                             RUN_FILES, or RUN_JOB on those): a new job or one already
                             running; they share its chunks, and a task that finds no free
                             chunk exits 0 at once
  --batch N                  start N tasks on a many-item job (run modes as for --add-tasks)
                             as one AWS Batch array job of size N (N: 1..10000; 1 submits a
                             plain job) on the job queue and job definition setup.sh created
                             (BATCH_JOB_QUEUE, BATCH_JOB_DEFINITION in the env file). Every
                             child runs the same job: they share its chunks, each with
                             AWS_BATCH_JOB_ARRAY_INDEX (a hint only) and SHARD_COUNT=N. Waits
                             (polling DescribeJobs) until the Batch job ends, shows each
                             child's logs, and exits 0 when every child succeeded, else the
                             first failed child's exit code. Not with --add-tasks, --shards,
                             --redrive or a single-item run mode (exit 64)
  --shards N                 start N tasks, task i with SHARD_INDEX=i and SHARD_COUNT=N; the
                             shard settings are only a hint now (tasks share chunks); default 1
  --env NAME=VALUE           extra environment variable for the worker (repeatable);
                             ACCESS_KEY/SECRET_KEY are refused: tasks use their task role
  --task-definition NAME     family, family:revision or ARN (default: TASK_FAMILY, latest)
  --cluster NAME             ECS cluster (default: CLUSTER from the env file)
  --region REGION            AWS region (default: REGION from the env file)
  --env-file PATH            settings written by setup.sh (ENV_FILE; default ./.env.deploy)
  --no-wait                  print the task ARNs (--batch: the Batch job id) and exit 0
                             without waiting
  --help                     show this help

Live controls: while a run over many items goes on, these attributes of its job record are
read by the heartbeat within one HEARTBEAT_SECONDS: concurrency (1..256 items in flight),
tolerated_failure_percent (0..100), request_pause (true: finish the items in flight and wait,
RUNNING with paused = true; false: go on). An invalid value is refused and logged; the previous
setting stays. For example:
  aws dynamodb update-item --table-name TABLE --key '{"object_id": {"S": "JOB_ID"}}' \
    --update-expression 'SET concurrency = :c' --expression-attribute-values '{":c": {"N": "16"}}'

Exit code: the worker container's exit code (the first non-zero one across tasks:
0 SUCCEEDED, 1 FAILED, 2 bad configuration, 3 not claimable, 69 storage unreachable,
70 internal error, 75 interrupted); 70 also when a task stopped without one (e.g. the image could not be
pulled). This script's own errors use codes the worker never returns:
  64  bad command line (unknown option, missing or invalid value)
  74  an AWS call failed (for example RunTask), or the tasks ran longer than 24 h
  78  configuration: env file or settings missing, no aws CLI, no AWS credentials
USAGE
}


RUN_MODE=RUN_JOB; JOB_ID=""; USERNAME=""; COLLECTION_OWNER=""; STREAM_ID=""; ACTION_ID=""
ACTION_INPUT_JSON=""; SHARDS=1; ADD_TASKS=""; TASK_DEFINITION=""; CLUSTER_OPT=""; REGION_OPT=""; WAIT=1
REDRIVE=""; BATCH=""
EXTRA_ENV=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --run-mode) need_value "$@"; RUN_MODE="$2"; shift 2 ;;
        --job-id) need_value "$@"; JOB_ID="$2"; shift 2 ;;
        --redrive) need_value "$@"; REDRIVE="$2"; shift 2 ;;
        --username) need_value "$@"; USERNAME="$2"; shift 2 ;;
        --collection-owner) need_value "$@"; COLLECTION_OWNER="$2"; shift 2 ;;
        --stream-id) need_value "$@"; STREAM_ID="$2"; shift 2 ;;
        --action-id) need_value "$@"; ACTION_ID="$2"; shift 2 ;;
        --action-input-json) need_value "$@"; ACTION_INPUT_JSON="$2"; shift 2 ;;
        --shards) need_value "$@"; SHARDS="$2"; shift 2 ;;
        --add-tasks) need_value "$@"; ADD_TASKS="$2"; shift 2 ;;
        --batch) need_value "$@"; BATCH="$2"; shift 2 ;;
        --env) need_value "$@"; EXTRA_ENV+=("$2"); shift 2 ;;
        --task-definition) need_value "$@"; TASK_DEFINITION="$2"; shift 2 ;;
        --cluster) need_value "$@"; CLUSTER_OPT="$2"; shift 2 ;;
        --region) need_value "$@"; REGION_OPT="$2"; shift 2 ;;
        --env-file) need_value "$@"; ENV_FILE="$2"; shift 2 ;;
        --no-wait) WAIT=0; shift ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; die "$EX_USAGE" "unknown option: $1" ;;
    esac
done
[[ -z "$BATCH" || -z "$REDRIVE" ]] || die "$EX_USAGE" "--batch and --redrive exclude each other (redrive first, then --batch on its new job)"
if [[ -n "$REDRIVE" ]]; then  # the job to launch is the redrive, created below
    [[ -z "$JOB_ID" ]] || die "$EX_USAGE" "--redrive creates the job: it takes no --job-id"
    [[ "$RUN_MODE" == RUN_JOB ]] || die "$EX_USAGE" "--redrive launches its new job with RUN_JOB: no --run-mode"
    [[ -n "$USERNAME" ]] || die "$EX_USAGE" "--redrive needs --username"
    JOB_ID="$REDRIVE"  # checked as a job id now; replaced by the new job's id once it exists
fi
if [[ "$RUN_MODE" != REGISTER_ACTIONS ]]; then  # the one run mode without a job
    [[ -n "$JOB_ID" && -n "$USERNAME" ]] || { usage >&2; die "$EX_USAGE" "--job-id and --username are required"; }
fi

# The RunTask requests come from the one launcher, feaas.launch (its rules for run modes, shards,
# the worker's environment and the client token), run with the project's Python.
PYTHON="$SCRIPT_DIR/.venv/bin/python"
[[ -x "$PYTHON" ]] || PYTHON=python3
job_args() {
    JOB_ARGS=(--run-mode "$RUN_MODE" --shards "$SHARDS")
    [[ -z "$ADD_TASKS" ]] || JOB_ARGS+=(--add-tasks "$ADD_TASKS")
    [[ -z "$JOB_ID" ]] || JOB_ARGS+=(--job-id "$JOB_ID")
    [[ -z "$USERNAME" ]] || JOB_ARGS+=(--username "$USERNAME")
    [[ -z "$COLLECTION_OWNER" ]] || JOB_ARGS+=(--collection-owner "$COLLECTION_OWNER")
    [[ -z "$STREAM_ID" ]] || JOB_ARGS+=(--stream-id "$STREAM_ID")
    [[ -z "$ACTION_ID" ]] || JOB_ARGS+=(--action-id "$ACTION_ID")
    [[ -z "$ACTION_INPUT_JSON" ]] || JOB_ARGS+=(--action-input-json "$ACTION_INPUT_JSON")
    local pair
    for pair in "${EXTRA_ENV[@]}"; do
        JOB_ARGS+=(--env "$pair")
    done
}
job_args

# launcher ARGS...: print what `python -m feaas.launch run-task-requests ARGS...` prints (with
# --batch: `submit-job-request --batch N`, the AWS Batch array job); its refusal of an option is a
# usage error, anything else means the project's Python is missing.
LAUNCH=(run-task-requests)
[[ -z "$BATCH" ]] || LAUNCH=(submit-job-request --batch "$BATCH")
launcher() {
    local out err code=0
    err="$(mktemp)"
    out="$(PYTHONPATH="$SCRIPT_DIR${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m feaas.launch "${LAUNCH[@]}" \
        "${JOB_ARGS[@]}" "$@" 2>"$err")" || code=$?
    local message
    message="$(grep -v '^[[:space:]]*$' "$err" | tail -n 1)" || true
    rm -f "$err"
    case "$code" in
        0) printf '%s\n' "$out" ;;
        64) die "$EX_USAGE" "${message#error: }" ;;
        *) die "$EX_CONFIG" "could not build the ${LAUNCH[0]%-request*} request with $PYTHON (run test_scripts/bootstrap.sh): ${message:-exit $code}" ;;
    esac
}
launcher --check >/dev/null

ENV_FILE="${ENV_FILE:-$SCRIPT_DIR/.env.deploy}"
[[ -f "$ENV_FILE" ]] || die "$EX_CONFIG" "$ENV_FILE not found: run ./setup.sh first"
declare -A CFG=()
read_settings "$ENV_FILE"
REGION="${REGION_OPT:-${CFG[REGION]:-}}"
CLUSTER="${CLUSTER_OPT:-${CFG[CLUSTER]:-}}"
TASK_DEFINITION="${TASK_DEFINITION:-${CFG[TASK_FAMILY]:-}}"
CONTAINER_NAME="${CFG[CONTAINER_NAME]:-worker}"
for name in REGION CLUSTER TASK_DEFINITION; do
    [[ -n "${!name}" ]] || die "$EX_CONFIG" "$name unknown: pass it or run ./setup.sh"
done
[[ -n "${CFG[SUBNETS]:-}" && -n "${CFG[SECURITY_GROUPS]:-}" ]] \
    || die "$EX_CONFIG" "SUBNETS and SECURITY_GROUPS missing from $ENV_FILE: run ./setup.sh"
require_aws "$REGION"

if [[ -n "$REDRIVE" ]]; then
    for name in DYNAMO_TABLE DYNAMO_STREAMS_TABLE PRIMARY_BUCKET; do
        [[ -n "${CFG[$name]:-}" ]] || die "$EX_CONFIG" "$name missing from $ENV_FILE: run ./setup.sh"
    done
    err="$(mktemp)"
    code=0
    JOB_ID="$(PYTHONPATH="$SCRIPT_DIR${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m feaas.launch redrive "$REDRIVE" \
        --username "$USERNAME" --table "${CFG[DYNAMO_TABLE]}" --streams-table "${CFG[DYNAMO_STREAMS_TABLE]}" \
        --bucket "${CFG[PRIMARY_BUCKET]}" --region "$REGION" 2>"$err")" || code=$?
    message="$(grep -v '^[[:space:]]*$' "$err" | tail -n 1)" || true
    rm -f "$err"
    case "$code" in
        0) say "redrive of $REDRIVE: new job $JOB_ID" ;;
        64) die "$EX_USAGE" "${message#error: }" ;;
        *) die "$EX_AWS" "could not create the redrive of $REDRIVE: ${message#error: }" ;;
    esac
    job_args
fi

awst() { aws_cli --region "$REGION" --output text "$@"; }

if [[ -n "$BATCH" ]]; then
    for name in BATCH_JOB_QUEUE BATCH_JOB_DEFINITION; do
        [[ -n "${CFG[$name]:-}" ]] || die "$EX_CONFIG" "$name missing from $ENV_FILE: run ./setup.sh (it creates the AWS Batch resources)"
    done
    request="$(launcher --job-queue "${CFG[BATCH_JOB_QUEUE]}" --job-definition "${CFG[BATCH_JOB_DEFINITION]}")" || exit
    BATCH_JOB_ID="$(awst batch submit-job --cli-input-json "$request" --query jobId)" \
        || die "$EX_AWS" "SubmitJob failed (see the aws error above)"
    say "submitted AWS Batch job $BATCH_JOB_ID ($BATCH task(s)) on queue ${CFG[BATCH_JOB_QUEUE]}"
    if [[ $WAIT -eq 0 ]]; then
        printf '%s\n' "$BATCH_JOB_ID"
        exit 0
    fi
    # Batch has no waiter: poll DescribeJobs (every BATCH_POLL_SECONDS, default 30) for up to 24 h.
    POLL="${BATCH_POLL_SECONDS:-30}"
    [[ "$POLL" =~ ^[0-9]+$ ]] || die "$EX_USAGE" "BATCH_POLL_SECONDS must be an integer"
    say "waiting for AWS Batch job $BATCH_JOB_ID to end"
    SECONDS=0
    last=""
    while true; do
        status="$(awst batch describe-jobs --jobs "$BATCH_JOB_ID" --query 'jobs[0].status')" \
            || die "$EX_AWS" "could not describe AWS Batch job $BATCH_JOB_ID"
        [[ "$status" != SUCCEEDED && "$status" != FAILED ]] || break
        [[ "$status" == "$last" ]] || say "AWS Batch job $BATCH_JOB_ID: $status"
        last="$status"
        [[ $SECONDS -lt 86400 ]] || die "$EX_AWS" "AWS Batch job $BATCH_JOB_ID still running after 24 h"
        sleep "$POLL"
    done
    # The children (or the plain job itself): status, exit code, reason and log stream, in index order.
    ids=("$BATCH_JOB_ID")
    if [[ "$BATCH" -ge 2 ]]; then
        ids=()
        for ((i = 0; i < BATCH; i++)); do ids+=("$BATCH_JOB_ID:$i"); done
    fi
    children=""
    for ((i = 0; i < ${#ids[@]}; i += 100)); do  # DescribeJobs takes at most 100 ids
        part="$(aws_cli --region "$REGION" --output json batch describe-jobs --jobs "${ids[@]:i:100}")" \
            || die "$EX_AWS" "could not describe the children of AWS Batch job $BATCH_JOB_ID"
        children+="$(python3 -c '
import json, sys
for job in sorted(json.load(sys.stdin).get("jobs", []), key=lambda j: j.get("arrayProperties", {}).get("index", 0)):
    container = job.get("container") or {}
    code = container.get("exitCode")
    reason = job.get("statusReason") or container.get("reason") or "-"
    print(job["jobId"], job.get("status", "-"), "-" if code is None else code, reason,
          container.get("logStreamName") or "-", sep="\t")
' <<<"$part")"$'\n'
    done
    EXIT_CODE=0
    while IFS=$'\t' read -r id state code reason stream; do
        [[ -n "$id" ]] || continue
        if [[ "$stream" != "-" ]]; then
            "$SCRIPT_DIR/show_logs.sh" --env-file "$ENV_FILE" --region "$REGION" --stream "$stream" \
                || say "no logs for $id"
        fi
        say "batch job $id: $state, exit code $code, reason: $reason"
        if [[ "$code" == "-" ]]; then
            [[ "$state" == SUCCEEDED || $EXIT_CODE -ne 0 ]] || EXIT_CODE=70
        elif [[ "$code" -ne 0 && $EXIT_CODE -eq 0 ]]; then
            EXIT_CODE="$code"
        fi
    done <<<"$children"
    [[ "$status" == SUCCEEDED || $EXIT_CODE -ne 0 ]] || EXIT_CODE=70
    say "exit code $EXIT_CODE"
    exit "$EXIT_CODE"
fi

# One RunTask per task: each shard's environment differs (SHARD_INDEX), and each added task has a
# client token of its own, which RunTask's `count` cannot express. The client token makes a retried call start no second task; each run of
# this script is a deliberate launch, so its launch attempt is the second it started.
requests="$(launcher --cluster "$CLUSTER" --task-definition "$TASK_DEFINITION" --subnets "${CFG[SUBNETS]}" \
    --security-groups "${CFG[SECURITY_GROUPS]}" --assign-public-ip "${CFG[ASSIGN_PUBLIC_IP]:-ENABLED}" \
    --container-name "$CONTAINER_NAME" --started-by plus-worker-run-task --launch-attempt "$(date +%s)")" || exit
mapfile -t REQUESTS <<<"$requests"
TASK_ARNS=()
WHAT=shard
[[ -z "$ADD_TASKS" ]] || WHAT=task
for ((shard = 0; shard < ${#REQUESTS[@]}; shard++)); do
    result="$(awst ecs run-task --cli-input-json "${REQUESTS[shard]}" \
        --query '[tasks[0].taskArn, failures[0].reason]')" \
        || die "$EX_AWS" "RunTask failed for $WHAT $shard (see the aws error above)"
    read -r arn reason <<<"$result"
    [[ -n "$arn" && "$arn" != None ]] || die "$EX_AWS" "$WHAT $shard did not start: $reason"
    say "started $WHAT $shard/${#REQUESTS[@]}: $arn"
    TASK_ARNS+=("$arn")
done

if [[ $WAIT -eq 0 ]]; then
    printf '%s\n' "${TASK_ARNS[@]}"
    exit 0
fi

say "waiting for ${#TASK_ARNS[@]} task(s) to stop"
# The waiter gives up after 10 minutes; jobs can run for hours, so wait again (up to 24 h).
for ((round = 1; ; round++)); do
    if aws --region "$REGION" ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "${TASK_ARNS[@]}"; then
        break
    fi
    [[ $round -lt 144 ]] || die "$EX_AWS" "tasks still running after 24 h"
    say "still running"
done

summary="$(aws_cli --region "$REGION" --output json ecs describe-tasks --cluster "$CLUSTER" \
    --tasks "${TASK_ARNS[@]}")" || die "$EX_AWS" "could not describe the stopped tasks"
EXIT_CODE=0
for arn in "${TASK_ARNS[@]}"; do
    "$SCRIPT_DIR/show_logs.sh" --env-file "$ENV_FILE" --region "$REGION" --task "$arn" \
        || say "no logs for $arn"
done
while IFS=$'\t' read -r arn code reason; do
    say "task $arn: exit code $code, stop reason: $reason"
    if [[ "$code" == "-" ]]; then
        [[ $EXIT_CODE -ne 0 ]] || EXIT_CODE=70
    elif [[ "$code" -ne 0 && $EXIT_CODE -eq 0 ]]; then
        EXIT_CODE="$code"
    fi
done < <(CONTAINER_NAME="$CONTAINER_NAME" python3 -c '
import json, os, sys
for task in json.load(sys.stdin).get("tasks", []):
    containers = [c for c in task.get("containers", []) if c.get("name") == os.environ["CONTAINER_NAME"]]
    code = containers[0].get("exitCode") if containers else None
    reason = task.get("stoppedReason") or "-"
    if containers and containers[0].get("reason"):
        reason += " (container: " + containers[0]["reason"] + ")"
    print(task["taskArn"], "-" if code is None else code, reason, sep="\t")
' <<<"$summary")
say "exit code $EXIT_CODE"
exit "$EXIT_CODE"
