#!/usr/bin/env bash
# show_logs.sh — print (and optionally follow) the worker's CloudWatch logs for one job or one task.
# Works with awscli v1, which has no `aws logs tail`: uses filter-log-events / get-log-events.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=show_logs
# shellcheck source=test_scripts/ops_common.sh
source "$SCRIPT_DIR/test_scripts/ops_common.sh"

usage() {
    cat <<'USAGE'
Usage: ./show_logs.sh (--job JOB_ID | --task TASK_ID | --stream NAME) [options]

  --job JOB_ID         every log line that mentions this job id, across all tasks
  --task TASK_ID       the log stream of one task (task id or full task ARN)
  --stream NAME        one log stream by name, e.g. an AWS Batch job's
                       (DescribeJobs: container.logStreamName; run-task.sh --batch uses it)
  --since DURATION     start this long ago: 30s, 15m, 2h, 7d (default: 1h for --job,
                       the beginning of the stream for --task)
  --follow             keep polling for new lines until interrupted (Ctrl-C)
  --poll-seconds N     seconds between polls with --follow (default 5)
  --raw                print messages as they are (default: pretty-print JSON lines,
                       with jq when installed, else python3)
  --log-group NAME     log group (default: LOG_GROUP from the env file)
  --region REGION      AWS region (default: REGION from the env file)
  --env-file PATH      settings written by setup.sh (ENV_FILE; default ./.env.deploy)
  --help               show this help

Exit codes: 0 done; 64 bad command line; 74 an AWS call failed (e.g. no such log stream);
78 configuration (no region or log group, no aws CLI, no AWS credentials).
USAGE
}


JOB=""; TASK=""; STREAM=""; SINCE=""; FOLLOW=0; RAW=0; POLL_SECONDS=5; LOG_GROUP_OPT=""; REGION_OPT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --job) need_value "$@"; JOB="$2"; shift 2 ;;
        --task) need_value "$@"; TASK="$2"; shift 2 ;;
        --stream) need_value "$@"; STREAM="$2"; shift 2 ;;
        --since) need_value "$@"; SINCE="$2"; shift 2 ;;
        --follow|-f) FOLLOW=1; shift ;;
        --poll-seconds) need_value "$@"; POLL_SECONDS="$2"; shift 2 ;;
        --raw) RAW=1; shift ;;
        --log-group) need_value "$@"; LOG_GROUP_OPT="$2"; shift 2 ;;
        --region) need_value "$@"; REGION_OPT="$2"; shift 2 ;;
        --env-file) need_value "$@"; ENV_FILE="$2"; shift 2 ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; die "$EX_USAGE" "unknown option: $1" ;;
    esac
done
[[ -n "$JOB$TASK$STREAM" ]] || { usage >&2; die "$EX_USAGE" "pass --job, --task or --stream"; }
given=0
for value in "$JOB" "$TASK" "$STREAM"; do [[ -z "$value" ]] || given=$((given + 1)); done
[[ $given -eq 1 ]] || die "$EX_USAGE" "pass only one of --job, --task and --stream"
[[ "$POLL_SECONDS" =~ ^[0-9]+$ ]] || die "$EX_USAGE" "--poll-seconds must be an integer"

ENV_FILE="${ENV_FILE:-$SCRIPT_DIR/.env.deploy}"
declare -A CFG=()
if [[ -f "$ENV_FILE" ]]; then
    read_settings "$ENV_FILE"
fi
REGION="${REGION_OPT:-${CFG[REGION]:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}}"
LOG_GROUP="${LOG_GROUP_OPT:-${CFG[LOG_GROUP]:-}}"
CONTAINER_NAME="${CFG[CONTAINER_NAME]:-worker}"
[[ -n "$REGION" ]] || die "$EX_CONFIG" "no region: pass --region or run ./setup.sh"
[[ -n "$LOG_GROUP" ]] || die "$EX_CONFIG" "no log group: pass --log-group or run ./setup.sh"

START_MS=""
if [[ -n "$SINCE" ]]; then
    [[ "$SINCE" =~ ^([0-9]+)([smhd])$ ]] || die "$EX_USAGE" "--since wants a duration like 30s, 15m, 2h or 7d"
    case "${BASH_REMATCH[2]}" in
        s) unit=1 ;; m) unit=60 ;; h) unit=3600 ;; d) unit=86400 ;;
    esac
    START_MS=$(( ($(date +%s) - BASH_REMATCH[1] * unit) * 1000 ))
elif [[ -n "$JOB" ]]; then
    START_MS=$(( ($(date +%s) - 3600) * 1000 ))
fi
require_aws "$REGION"

# print_events: read a logs API response (JSON) on stdin, print each event's message.
print_events() {
    if [[ $RAW -eq 1 ]]; then
        python3 -c 'import json, sys
for e in json.load(sys.stdin).get("events", []): print(e["message"])'
    elif command -v jq >/dev/null 2>&1; then
        jq -r '.events[]?.message | . as $m
               | try (fromjson | if type == "object" or type == "array" then . else $m end) catch $m'
    else
        python3 -c 'import json, sys
for e in json.load(sys.stdin).get("events", []):
    m = e["message"]
    try:
        v = json.loads(m)
    except ValueError:
        v = None
    print(json.dumps(v, indent=2, ensure_ascii=False) if isinstance(v, (dict, list)) else m)'
    fi
}

# json_get EXPR: evaluate a Python expression over the JSON document `d` read from stdin.
json_get() { python3 -c "import json, sys; d = json.load(sys.stdin); v = $1; print('' if v is None else v)"; }

awsj() { aws_cli --region "$REGION" --output json "$@"; }

WHAT="stream $STREAM"
if [[ -n "$TASK" ]]; then
    # awslogs stream names are <prefix>/<container>/<task id>; setup.sh uses prefix "worker".
    STREAM="worker/$CONTAINER_NAME/${TASK##*/}"
    WHAT=task
fi
if [[ -n "$STREAM" ]]; then
    args=(logs get-log-events --log-group-name "$LOG_GROUP" --log-stream-name "$STREAM" --start-from-head)
    [[ -z "$START_MS" ]] || args+=(--start-time "$START_MS")
    token=""
    while true; do
        if [[ -n "$token" ]]; then
            resp="$(awsj "${args[@]}" --next-token "$token")"
        elif ! resp="$(awsj "${args[@]}" 2>"${TMPDIR:-/tmp}/show_logs.$$")"; then
            err="$(cat "${TMPDIR:-/tmp}/show_logs.$$")"; rm -f "${TMPDIR:-/tmp}/show_logs.$$"
            [[ $FOLLOW -eq 1 && "$err" == *ResourceNotFound* ]] || die "$EX_AWS" "no logs for $WHAT: $err"
            sleep "$POLL_SECONDS"; continue
        fi
        rm -f "${TMPDIR:-/tmp}/show_logs.$$"
        print_events <<<"$resp"
        next="$(json_get 'd.get("nextForwardToken")' <<<"$resp")"
        if [[ "$next" == "$token" ]]; then
            # The same token back means the end of the stream for now.
            [[ $FOLLOW -eq 1 ]] || break
            sleep "$POLL_SECONDS"
        fi
        token="$next"
    done
else
    # A quoted term matches lines containing the job id exactly (the worker logs `job_id`).
    pattern="\"$JOB\""
    while true; do
        resp="$(awsj logs filter-log-events --log-group-name "$LOG_GROUP" \
            --filter-pattern "$pattern" --start-time "$START_MS")"
        print_events <<<"$resp"
        [[ $FOLLOW -eq 1 ]] || break
        last="$(json_get 'max([e["timestamp"] for e in d.get("events", [])], default=None)' <<<"$resp")"
        # Next poll starts after the newest line seen (lines within the same millisecond as it
        # that arrive late are not shown).
        [[ -z "$last" ]] || START_MS=$((last + 1))
        sleep "$POLL_SECONDS"
    done
fi
