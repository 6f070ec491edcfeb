#!/usr/bin/env bash
# setup.sh — create (or bring up to date) the AWS resources plus-worker runs on.
#
# Idempotent: every resource is read first and only created or updated when it differs from what
# this script wants, so a second run with the same settings changes nothing ("0 changes").
# Needs: aws CLI (v1 or v2) and python3 (JSON handling). Run `./setup.sh --help` for the flags.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=setup
# shellcheck source=test_scripts/ops_common.sh
source "$SCRIPT_DIR/test_scripts/ops_common.sh"

usage() {
    cat <<'EOF'
Usage: ./setup.sh [options]

Creates or updates the ECS cluster, ECR repository, CloudWatch log group, execution role,
task role and task definition for plus-worker, the EventBridge Scheduler schedule (with its
role) that runs the sweeper (RUN_MODE=SWEEP) every minute, and for `run-task.sh --batch` an AWS
Batch Fargate compute environment, job queue and job definition (the task definition's image,
roles, environment, logs and size; Batch's service-linked role is created if the account has
none), then writes the settings to .env.deploy.
Safe to re-run. Interactive by default; pass --yes (and the values below) to run unattended.

Each option can also be given as the environment variable shown; an option wins over the
environment, which wins over an existing .env.deploy, which wins over the default.

  --region REGION            AWS region (REGION, AWS_REGION, AWS_DEFAULT_REGION)
  --cluster NAME             ECS cluster (CLUSTER; default plus-worker)
  --subnets IDS              comma-separated subnet ids (SUBNETS; default: default VPC subnets)
  --security-groups IDS      comma-separated security group ids (SECURITY_GROUPS;
                             default: the default VPC's "default" group)
  --assign-public-ip VALUE   ENABLED or DISABLED (ASSIGN_PUBLIC_IP; default ENABLED, needed
                             to pull the image without a NAT gateway or VPC endpoints)
  --table NAME               documents table (DYNAMO_TABLE; required)
  --streams-table NAME       streams table (DYNAMO_STREAMS_TABLE; required)
  --owner-index NAME         owner GSI of the documents table (DYNAMO_OWNER_INDEX; default ownerIndex)
  --bucket NAME              S3 bucket (PRIMARY_BUCKET; required)
  --cpu UNITS                task CPU units (TASK_CPU; default 1024)
  --memory MIB               task memory in MiB (TASK_MEMORY; default 2048)
  --family NAME              task definition family, ECR repository and role prefix
                             (TASK_FAMILY; default plus-worker)
  --log-group NAME           CloudWatch log group (LOG_GROUP; default /ecs/<family>)
  --log-retention-days N     log retention in days (LOG_RETENTION_DAYS; default 30)
  --batch-max-vcpus N        most vCPUs the AWS Batch compute environment runs at once
                             (BATCH_MAX_VCPUS; default 64: 64 tasks of --cpu 1024)
  --env-file PATH            settings file to read and write (ENV_FILE; default ./.env.deploy)
  --yes                      do not prompt; required when stdin is not a terminal
  --help                     show this help

No access keys are stored anywhere: the task gets its credentials from the task role, whose
policy allows only the two DynamoDB tables (and the owner index), the bucket, and for the
sweeper ecs:DescribeTasks and ecs:RunTask on the cluster and iam:PassRole of the task roles.

Exit codes: 0 done; 64 bad command line (or no terminal without --yes, or cancelled);
74 an AWS call failed; 78 configuration (settings missing or invalid, no default VPC,
no aws CLI, no AWS credentials).
EOF
}


CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); say "$*"; }

# ---- options ---------------------------------------------------------------------------------
YES=0
declare -A OPT=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --region) need_value "$@"; OPT[REGION]="$2"; shift 2 ;;
        --cluster) need_value "$@"; OPT[CLUSTER]="$2"; shift 2 ;;
        --subnets) need_value "$@"; OPT[SUBNETS]="$2"; shift 2 ;;
        --security-groups) need_value "$@"; OPT[SECURITY_GROUPS]="$2"; shift 2 ;;
        --assign-public-ip) need_value "$@"; OPT[ASSIGN_PUBLIC_IP]="$2"; shift 2 ;;
        --table) need_value "$@"; OPT[DYNAMO_TABLE]="$2"; shift 2 ;;
        --streams-table) need_value "$@"; OPT[DYNAMO_STREAMS_TABLE]="$2"; shift 2 ;;
        --owner-index) need_value "$@"; OPT[DYNAMO_OWNER_INDEX]="$2"; shift 2 ;;
        --bucket) need_value "$@"; OPT[PRIMARY_BUCKET]="$2"; shift 2 ;;
        --cpu) need_value "$@"; OPT[TASK_CPU]="$2"; shift 2 ;;
        --memory) need_value "$@"; OPT[TASK_MEMORY]="$2"; shift 2 ;;
        --family) need_value "$@"; OPT[TASK_FAMILY]="$2"; shift 2 ;;
        --log-group) need_value "$@"; OPT[LOG_GROUP]="$2"; shift 2 ;;
        --log-retention-days) need_value "$@"; OPT[LOG_RETENTION_DAYS]="$2"; shift 2 ;;
        --batch-max-vcpus) need_value "$@"; OPT[BATCH_MAX_VCPUS]="$2"; shift 2 ;;
        --env-file) need_value "$@"; ENV_FILE="$2"; shift 2 ;;
        --yes|-y) YES=1; shift ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; die "$EX_USAGE" "unknown option: $1" ;;
    esac
done

ENV_FILE="${ENV_FILE:-$SCRIPT_DIR/.env.deploy}"

# Values from an earlier run (KEY=VALUE lines; nothing in it is executed).
declare -A CFG=()
if [[ -f "$ENV_FILE" ]]; then
    read_settings "$ENV_FILE"
fi

# setting NAME DEFAULT: option > environment > env file > default
setting() {
    local name="$1" default="${2:-}"
    if [[ -n "${OPT[$name]:-}" ]]; then
        printf -v "$name" '%s' "${OPT[$name]}"
    elif [[ -n "${!name:-}" ]]; then
        : # already set in the environment
    elif [[ -n "${CFG[$name]:-}" ]]; then
        printf -v "$name" '%s' "${CFG[$name]}"
    else
        printf -v "$name" '%s' "$default"
    fi
}

setting REGION "${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
setting CLUSTER plus-worker
setting SUBNETS
setting SECURITY_GROUPS
setting ASSIGN_PUBLIC_IP ENABLED
setting DYNAMO_TABLE
setting DYNAMO_STREAMS_TABLE
setting DYNAMO_OWNER_INDEX ownerIndex
setting PRIMARY_BUCKET
setting TASK_CPU 1024
setting TASK_MEMORY 2048
setting TASK_FAMILY plus-worker
setting LOG_GROUP "/ecs/$TASK_FAMILY"
setting LOG_RETENTION_DAYS 30
setting BATCH_MAX_VCPUS 64

SETTINGS=(REGION CLUSTER SUBNETS SECURITY_GROUPS ASSIGN_PUBLIC_IP DYNAMO_TABLE DYNAMO_STREAMS_TABLE
          DYNAMO_OWNER_INDEX PRIMARY_BUCKET TASK_CPU TASK_MEMORY TASK_FAMILY LOG_GROUP LOG_RETENTION_DAYS
          BATCH_MAX_VCPUS)

if [[ $YES -eq 0 ]]; then
    [[ -t 0 ]] || die "$EX_USAGE" "stdin is not a terminal: pass --yes and the settings as options or env vars"
    say "press Enter to keep the value in brackets"
    for name in "${SETTINGS[@]}"; do
        read -r -p "  $name [${!name}]: " answer
        if [[ -n "$answer" ]]; then printf -v "$name" '%s' "$answer"; fi
    done
fi

missing=()
for name in REGION DYNAMO_TABLE DYNAMO_STREAMS_TABLE PRIMARY_BUCKET; do
    [[ -n "${!name}" ]] || missing+=("$name")
done
[[ ${#missing[@]} -eq 0 ]] || die "$EX_CONFIG" "missing settings: ${missing[*]} (see --help)"
for name in "${SETTINGS[@]}"; do
    # Values end up in JSON documents and in .env.deploy: keep them to plain characters.
    [[ "${!name}" =~ ^[A-Za-z0-9_./,:@-]*$ ]] || die "$EX_CONFIG" "$name has characters that are not allowed: ${!name}"
done
[[ "$TASK_CPU" =~ ^[0-9]+$ && "$TASK_MEMORY" =~ ^[0-9]+$ ]] || die "$EX_CONFIG" "--cpu and --memory must be integers"
[[ "$LOG_RETENTION_DAYS" =~ ^[0-9]+$ ]] || die "$EX_CONFIG" "--log-retention-days must be an integer"
[[ "$BATCH_MAX_VCPUS" =~ ^[1-9][0-9]*$ ]] || die "$EX_CONFIG" "--batch-max-vcpus must be a positive integer"
[[ "$ASSIGN_PUBLIC_IP" == ENABLED || "$ASSIGN_PUBLIC_IP" == DISABLED ]] \
    || die "$EX_CONFIG" "--assign-public-ip must be ENABLED or DISABLED"

awsr() { aws_cli --region "$REGION" --output json "$@"; }
awst() { aws_cli --region "$REGION" --output text "$@"; }

# Canonical JSON (sorted keys) so documents can be compared with what AWS returns.
json_canon() { python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# contains.py WANT HAVE: exit 0 when AWS already has everything setup.sh wants (a resource is only
# written when it differs); --target-input also compares a schedule's Target.Input JSON as a value.
cat >"$WORK/contains.py" <<'EOF'
import json
import sys


def contains(have, want):
    if isinstance(want, dict):
        return isinstance(have, dict) and all(contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(contains, have, want))
    return str(have) == str(want)


args = sys.argv[1:]
target_input = args[0] == "--target-input"
want, have = (json.load(open(p, encoding="utf-8")) for p in args[target_input:])
same_input = True
if target_input:
    have_input = json.loads(have.get("Target", {}).pop("Input", "null") or "null")
    same_input = have_input == json.loads(want["Target"].pop("Input"))
sys.exit(0 if same_input and contains(have, want) else 1)
EOF

# ---- identity and network --------------------------------------------------------------------
require_aws "$REGION"
ACCOUNT_ID="$CALLER_ACCOUNT"
PARTITION="$(cut -d: -f2 <<<"$CALLER_ARN")"
say "account $ACCOUNT_ID, region $REGION"

if [[ -z "$SUBNETS" || -z "$SECURITY_GROUPS" ]]; then
    VPC_ID="$(awst ec2 describe-vpcs --filters Name=isDefault,Values=true --query 'Vpcs[0].VpcId')"
    [[ -n "$VPC_ID" && "$VPC_ID" != None ]] || die "$EX_CONFIG" "no default VPC: pass --subnets and --security-groups"
    if [[ -z "$SUBNETS" ]]; then
        SUBNETS="$(awst ec2 describe-subnets \
            --filters "Name=vpc-id,Values=$VPC_ID" Name=default-for-az,Values=true \
            --query 'sort(Subnets[].SubnetId)' | tr -s '\t ' ',')"
    fi
    if [[ -z "$SECURITY_GROUPS" ]]; then
        SECURITY_GROUPS="$(awst ec2 describe-security-groups \
            --filters "Name=vpc-id,Values=$VPC_ID" Name=group-name,Values=default \
            --query 'SecurityGroups[0].GroupId')"
    fi
    say "default VPC $VPC_ID: subnets $SUBNETS, security groups $SECURITY_GROUPS"
fi
[[ -n "$SUBNETS" && "$SUBNETS" != None ]] || die "$EX_CONFIG" "no subnets found: pass --subnets"
[[ -n "$SECURITY_GROUPS" && "$SECURITY_GROUPS" != None ]] || die "$EX_CONFIG" "no security group found: pass --security-groups"

if [[ $YES -eq 0 ]]; then
    read -r -p "Create or update the resources in account $ACCOUNT_ID ($REGION)? [y/N] " answer
    [[ "$answer" == y || "$answer" == Y || "$answer" == yes ]] || die "$EX_USAGE" "cancelled"
fi

EXECUTION_ROLE="$TASK_FAMILY-execution"
TASK_ROLE="$TASK_FAMILY-task"
ECR_REPO="$TASK_FAMILY"
SCHEDULER_ROLE="$TASK_FAMILY-scheduler"
SCHEDULE_NAME="$TASK_FAMILY-sweeper"
ARN_PREFIX="arn:$PARTITION"
CLUSTER_ARN="$ARN_PREFIX:ecs:$REGION:$ACCOUNT_ID:cluster/$CLUSTER"
# The family without a revision: RunTask (the schedule's, the sweeper's) takes its latest revision,
# so deploy.sh's new revisions need no change here.
TASKDEF_ARN_PREFIX="$ARN_PREFIX:ecs:$REGION:$ACCOUNT_ID:task-definition/$TASK_FAMILY"
TASK_ROLE_ARN_WANTED="$ARN_PREFIX:iam::$ACCOUNT_ID:role/$TASK_ROLE"
EXECUTION_ROLE_ARN_WANTED="$ARN_PREFIX:iam::$ACCOUNT_ID:role/$EXECUTION_ROLE"

# ---- ECS cluster -----------------------------------------------------------------------------
active="$(awst ecs describe-clusters --clusters "$CLUSTER" --query "length(clusters[?status=='ACTIVE'])")"
if [[ "$active" == 0 ]]; then
    awsr ecs create-cluster --cluster-name "$CLUSTER" >/dev/null
    changed "created ECS cluster $CLUSTER"
else
    say "ECS cluster $CLUSTER: unchanged"
fi

# ---- ECR repository --------------------------------------------------------------------------
if repo="$(awst ecr describe-repositories --repository-names "$ECR_REPO" \
        --query 'repositories[0].[repositoryUri, imageScanningConfiguration.scanOnPush]' 2>/dev/null)"; then
    read -r ECR_URI scan <<<"$repo"
    if [[ "$scan" != True ]]; then
        awsr ecr put-image-scanning-configuration --repository-name "$ECR_REPO" \
            --image-scanning-configuration scanOnPush=true >/dev/null
        changed "turned on scan-on-push for ECR repository $ECR_REPO"
    else
        say "ECR repository $ECR_REPO: unchanged"
    fi
else
    ECR_URI="$(awst ecr create-repository --repository-name "$ECR_REPO" \
        --image-scanning-configuration scanOnPush=true --image-tag-mutability MUTABLE \
        --query repository.repositoryUri)"
    changed "created ECR repository $ECR_REPO"
fi

cat >"$WORK/lifecycle.json" <<'EOF'
{"rules": [
  {"rulePriority": 1, "description": "Expire untagged images after 7 days",
   "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
   "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "Keep the 50 newest images",
   "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50},
   "action": {"type": "expire"}}
]}
EOF
want="$(json_canon <"$WORK/lifecycle.json")"
have="$(awst ecr get-lifecycle-policy --repository-name "$ECR_REPO" --query lifecyclePolicyText \
        2>/dev/null | json_canon 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    awsr ecr put-lifecycle-policy --repository-name "$ECR_REPO" \
        --lifecycle-policy-text "file://$WORK/lifecycle.json" >/dev/null
    changed "set the ECR lifecycle policy"
else
    say "ECR lifecycle policy: unchanged"
fi

# ---- CloudWatch log group --------------------------------------------------------------------
retention="$(awst logs describe-log-groups --log-group-name-prefix "$LOG_GROUP" \
    --query "logGroups[?logGroupName=='$LOG_GROUP'] | [0].[logGroupName, retentionInDays]")"
if [[ "$retention" == None || -z "$retention" ]]; then
    awsr logs create-log-group --log-group-name "$LOG_GROUP" >/dev/null
    changed "created log group $LOG_GROUP"
    retention=""
else
    retention="$(cut -f2 <<<"$retention")"
fi
if [[ "$retention" != "$LOG_RETENTION_DAYS" ]]; then
    awsr logs put-retention-policy --log-group-name "$LOG_GROUP" \
        --retention-in-days "$LOG_RETENTION_DAYS" >/dev/null
    changed "set log retention to $LOG_RETENTION_DAYS days"
else
    say "log group $LOG_GROUP: unchanged"
fi

# ---- IAM roles -------------------------------------------------------------------------------
# ensure_role NAME TRUST_FILE POLICY_NAME POLICY_FILE: role with that trust policy and one inline
# policy; sets ROLE_ARN.
ensure_role() {
    local role="$1" trust_file="$2" policy_name="$3" policy_file="$4" have want
    want="$(json_canon <"$trust_file")"
    if have="$(awsr iam get-role --role-name "$role" --query Role 2>/dev/null)"; then
        ROLE_ARN="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["Arn"])' <<<"$have")"
        have="$(python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["AssumeRolePolicyDocument"]))' \
            <<<"$have" | json_canon)"
        if [[ "$have" != "$want" ]]; then
            awsr iam update-assume-role-policy --role-name "$role" \
                --policy-document "file://$trust_file" >/dev/null
            changed "updated the trust policy of role $role"
        fi
    else
        ROLE_ARN="$(awst iam create-role --role-name "$role" --assume-role-policy-document "file://$trust_file" \
            --description "plus-worker ($TASK_FAMILY)" --query Role.Arn)"
        changed "created role $role"
    fi
    want="$(json_canon <"$policy_file")"
    have="$(awsr iam get-role-policy --role-name "$role" --policy-name "$policy_name" \
            --query PolicyDocument 2>/dev/null | json_canon 2>/dev/null || true)"
    if [[ "$have" != "$want" ]]; then
        awsr iam put-role-policy --role-name "$role" --policy-name "$policy_name" \
            --policy-document "file://$policy_file" >/dev/null
        changed "set policy $policy_name of role $role"
    else
        say "role $role: unchanged"
    fi
}

cat >"$WORK/execution-trust.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
]}
EOF
# The execution role is used by ECS itself: pull the image and write the container's logs.
cat >"$WORK/execution-policy.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "EcrAuth", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
  {"Sid": "EcrPull", "Effect": "Allow",
   "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
   "Resource": "$ARN_PREFIX:ecr:$REGION:$ACCOUNT_ID:repository/$ECR_REPO"},
  {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
   "Resource": "$ARN_PREFIX:logs:$REGION:$ACCOUNT_ID:log-group:$LOG_GROUP:*"}
]}
EOF
# The task role is what the worker's code runs as (boto3's default credential chain). The
# conditions stop other accounts' ECS tasks from assuming it (confused deputy).
cat >"$WORK/task-trust.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole",
   "Condition": {"ArnLike": {"aws:SourceArn": "$ARN_PREFIX:ecs:$REGION:$ACCOUNT_ID:*"},
                 "StringEquals": {"aws:SourceAccount": "$ACCOUNT_ID"}}}
]}
EOF
# Least privilege: the documents table and its owner index, the streams table, the bucket.
# No Scan, no DeleteObject; DeleteItem only on the index of held jobs (its partition in the streams
# table). The sweeper (RUN_MODE=SWEEP, same task definition) also asks ECS why a task stopped and
# relaunches jobs: DescribeTasks and RunTask on this cluster only, PassRole of the two task roles.
cat >"$WORK/task-policy.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Documents", "Effect": "Allow",
   "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
              "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
              "dynamodb:DescribeTable"],
   "Resource": ["$ARN_PREFIX:dynamodb:$REGION:$ACCOUNT_ID:table/$DYNAMO_TABLE",
                "$ARN_PREFIX:dynamodb:$REGION:$ACCOUNT_ID:table/$DYNAMO_TABLE/index/$DYNAMO_OWNER_INDEX"]},
  {"Sid": "Streams", "Effect": "Allow",
   "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem",
              "dynamodb:DescribeTable"],
   "Resource": "$ARN_PREFIX:dynamodb:$REGION:$ACCOUNT_ID:table/$DYNAMO_STREAMS_TABLE"},
  {"Sid": "RunningIndex", "Effect": "Allow", "Action": "dynamodb:DeleteItem",
   "Resource": "$ARN_PREFIX:dynamodb:$REGION:$ACCOUNT_ID:table/$DYNAMO_STREAMS_TABLE",
   "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["sys/plus-worker/running"]}}},
  {"Sid": "SweeperDescribe", "Effect": "Allow", "Action": "ecs:DescribeTasks",
   "Resource": "$ARN_PREFIX:ecs:$REGION:$ACCOUNT_ID:task/$CLUSTER/*",
   "Condition": {"ArnEquals": {"ecs:cluster": "$CLUSTER_ARN"}}},
  {"Sid": "SweeperRelaunch", "Effect": "Allow", "Action": "ecs:RunTask",
   "Resource": ["$TASKDEF_ARN_PREFIX", "$TASKDEF_ARN_PREFIX:*"],
   "Condition": {"ArnEquals": {"ecs:cluster": "$CLUSTER_ARN"}}},
  {"Sid": "SweeperPassRoles", "Effect": "Allow", "Action": "iam:PassRole",
   "Resource": ["$TASK_ROLE_ARN_WANTED", "$EXECUTION_ROLE_ARN_WANTED"],
   "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
  {"Sid": "BucketList", "Effect": "Allow", "Action": "s3:ListBucket",
   "Resource": "$ARN_PREFIX:s3:::$PRIMARY_BUCKET"},
  {"Sid": "BucketObjects", "Effect": "Allow",
   "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
   "Resource": "$ARN_PREFIX:s3:::$PRIMARY_BUCKET/*"}
]}
EOF
ensure_role "$EXECUTION_ROLE" "$WORK/execution-trust.json" plus-worker-execution "$WORK/execution-policy.json"
EXECUTION_ROLE_ARN="$ROLE_ARN"
ensure_role "$TASK_ROLE" "$WORK/task-trust.json" plus-worker-data "$WORK/task-policy.json"
TASK_ROLE_ARN="$ROLE_ARN"

# ---- task definition -------------------------------------------------------------------------
# Keep the image of the current revision (deploy.sh pins it to a git SHA); :latest before the
# first deploy.
current="$WORK/current-taskdef.json"
if awsr ecs describe-task-definition --task-definition "$TASK_FAMILY" \
        --query taskDefinition >"$current" 2>/dev/null; then
    IMAGE="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["containerDefinitions"][0]["image"])' <"$current")"
else
    echo '{}' >"$current"
    IMAGE="$ECR_URI:latest"
fi

export TASK_FAMILY TASK_CPU TASK_MEMORY TASK_ROLE_ARN EXECUTION_ROLE_ARN IMAGE LOG_GROUP REGION \
       DYNAMO_TABLE DYNAMO_STREAMS_TABLE DYNAMO_OWNER_INDEX PRIMARY_BUCKET
python3 - "$WORK/taskdef.json" <<'EOF'
import json
import os
import sys

env = os.environ
environment = {
    "REGION": env["REGION"],
    "DYNAMO_TABLE": env["DYNAMO_TABLE"],
    "DYNAMO_STREAMS_TABLE": env["DYNAMO_STREAMS_TABLE"],
    "DYNAMO_OWNER_INDEX": env["DYNAMO_OWNER_INDEX"],
    "PRIMARY_BUCKET": env["PRIMARY_BUCKET"],
    "LOG_FORMAT": "json",
}
taskdef = {
    "family": env["TASK_FAMILY"],
    "taskRoleArn": env["TASK_ROLE_ARN"],
    "executionRoleArn": env["EXECUTION_ROLE_ARN"],
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
    "cpu": env["TASK_CPU"],
    "memory": env["TASK_MEMORY"],
    # The task's disk: media actions download, encode and upload through /tmp (issue 14).
    "ephemeralStorage": {"sizeInGiB": 50},
    # /tmp is the only writable place of the container (a volume on that disk); the image's own
    # files stay read-only.
    "volumes": [{"name": "tmp"}],
    "containerDefinitions": [{
        "name": "worker",
        "image": env["IMAGE"],
        "essential": True,
        "memory": int(env["TASK_MEMORY"]),
        # Fargate's maximum: the worker needs up to 20 s to save progress after SIGTERM.
        "stopTimeout": 120,
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": env["LOG_GROUP"],
                "awslogs-region": env["REGION"],
                "awslogs-stream-prefix": "worker",
            },
        },
    }],
}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(taskdef, f, indent=2)
EOF

# Register only when the wanted definition is not already the latest revision.
if python3 "$WORK/contains.py" "$WORK/taskdef.json" "$current"; then
    TASK_DEFINITION_ARN="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["taskDefinitionArn"])' <"$current")"
    say "task definition $TASK_DEFINITION_ARN: unchanged"
else
    TASK_DEFINITION_ARN="$(awst ecs register-task-definition --cli-input-json "file://$WORK/taskdef.json" \
        --query taskDefinition.taskDefinitionArn)"
    changed "registered task definition $TASK_DEFINITION_ARN"
fi

# ---- the sweeper's schedule ------------------------------------------------------------------
# EventBridge Scheduler starts one RUN_MODE=SWEEP task a minute (README "Lifecycle"): the worker's
# task definition with a container override, on Fargate, in the worker's network. Its role may
# only run that task definition on this cluster and pass the two task roles to ECS.
cat >"$WORK/scheduler-trust.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
   "Condition": {"StringEquals": {"aws:SourceAccount": "$ACCOUNT_ID"}}}
]}
EOF
cat >"$WORK/scheduler-policy.json" <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "RunSweeper", "Effect": "Allow", "Action": "ecs:RunTask",
   "Resource": ["$TASKDEF_ARN_PREFIX", "$TASKDEF_ARN_PREFIX:*"],
   "Condition": {"ArnEquals": {"ecs:cluster": "$CLUSTER_ARN"}}},
  {"Sid": "PassTaskRoles", "Effect": "Allow", "Action": "iam:PassRole",
   "Resource": ["$TASK_ROLE_ARN", "$EXECUTION_ROLE_ARN"],
   "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}
]}
EOF
before_role=$CHANGES
ensure_role "$SCHEDULER_ROLE" "$WORK/scheduler-trust.json" plus-worker-sweeper-schedule "$WORK/scheduler-policy.json"
SCHEDULER_ROLE_ARN="$ROLE_ARN"

export SCHEDULE_NAME SCHEDULER_ROLE_ARN CLUSTER CLUSTER_ARN TASKDEF_ARN_PREFIX SUBNETS SECURITY_GROUPS \
       ASSIGN_PUBLIC_IP
python3 - "$WORK/schedule.json" <<'EOF'
import json
import os
import sys

env = os.environ
# What the sweeper reads (feaas.settings.SweepSettings) beyond the task definition's own variables.
sweeper_env = {
    "RUN_MODE": "SWEEP",
    "CLUSTER": env["CLUSTER"],
    "TASK_FAMILY": env["TASK_FAMILY"],
    "SUBNETS": env["SUBNETS"],
    "SECURITY_GROUPS": env["SECURITY_GROUPS"],
    "ASSIGN_PUBLIC_IP": env["ASSIGN_PUBLIC_IP"],
    "CONTAINER_NAME": "worker",
    "MAX_ATTEMPTS": "3",
}
overrides = {"containerOverrides": [
    {"name": "worker", "environment": [{"name": k, "value": v} for k, v in sorted(sweeper_env.items())]},
]}
schedule = {
    "Name": env["SCHEDULE_NAME"],
    "GroupName": "default",
    "Description": f"plus-worker ({env['TASK_FAMILY']}): RUN_MODE=SWEEP records or relaunches the jobs of dead tasks",
    "ScheduleExpression": "rate(1 minute)",
    "FlexibleTimeWindow": {"Mode": "OFF"},
    "State": "ENABLED",
    "Target": {
        "Arn": env["CLUSTER_ARN"],
        "RoleArn": env["SCHEDULER_ROLE_ARN"],
        # For an ECS target, Input is the task's overrides.
        "Input": json.dumps(overrides, sort_keys=True),
        # A sweep that could not start is not worth retrying: the next minute's sweep does it.
        "RetryPolicy": {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0},
        "EcsParameters": {
            "TaskDefinitionArn": env["TASKDEF_ARN_PREFIX"],
            "TaskCount": 1,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {"awsvpcConfiguration": {
                "Subnets": [s for s in env["SUBNETS"].split(",") if s],
                "SecurityGroups": [g for g in env["SECURITY_GROUPS"].split(",") if g],
                "AssignPublicIp": env["ASSIGN_PUBLIC_IP"],
            }},
        },
    },
}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(schedule, f, indent=2)
EOF

current_schedule="$WORK/current-schedule.json"
if awsr scheduler get-schedule --name "$SCHEDULE_NAME" --group-name default >"$current_schedule" 2>"$WORK/schedule.err"; then
    schedule_verb=update
elif grep -q ResourceNotFoundException "$WORK/schedule.err"; then
    schedule_verb=create
else
    cat "$WORK/schedule.err" >&2
    die "$EX_AWS" "could not read schedule $SCHEDULE_NAME (EventBridge Scheduler)"
fi
if [[ $schedule_verb == update ]] && python3 "$WORK/contains.py" --target-input "$WORK/schedule.json" \
    "$current_schedule"; then
    say "schedule $SCHEDULE_NAME: unchanged"
else
    # A role created a moment ago may not be assumable by the scheduler yet: try again a while.
    tries=1
    until awsr scheduler "$schedule_verb-schedule" --cli-input-json "file://$WORK/schedule.json" >/dev/null; do
        [[ $CHANGES -gt $before_role && $tries -lt 6 ]] || die "$EX_AWS" "could not $schedule_verb schedule $SCHEDULE_NAME"
        tries=$((tries + 1))
        sleep 10
    done
    changed "${schedule_verb}d schedule $SCHEDULE_NAME (RUN_MODE=SWEEP every minute)"
fi

# ---- AWS Batch (run-task.sh --batch) ---------------------------------------------------------
# A Fargate compute environment in the tasks' network, a job queue on it, and a job definition
# that runs the worker exactly as the task definition does. Batch acts through its service-linked
# role (AWSServiceRoleForBatch: permissions defined by AWS for Batch alone); the jobs run with the
# same task and execution roles as the ECS tasks.
BATCH_COMPUTE_ENVIRONMENT="$TASK_FAMILY-fargate"
BATCH_JOB_QUEUE="$TASK_FAMILY"
BATCH_JOB_DEFINITION="$TASK_FAMILY"
BATCH_SERVICE_ROLE_ARN="$(awst iam list-roles --path-prefix /aws-service-role/batch.amazonaws.com/ \
    --query 'Roles[0].Arn')"
if [[ -z "$BATCH_SERVICE_ROLE_ARN" || "$BATCH_SERVICE_ROLE_ARN" == None ]]; then
    BATCH_SERVICE_ROLE_ARN="$(awst iam create-service-linked-role --aws-service-name batch.amazonaws.com \
        --query Role.Arn)"
    changed "created the AWS Batch service-linked role"
else
    say "AWS Batch service-linked role: unchanged"
fi

# batch_wait_valid KIND NAME: wait (up to 5 min) until a compute environment or job queue just
# created or updated is VALID; the queue and the jobs need it.
batch_wait_valid() {
    local kind="$1" name="$2" status try
    for ((try = 0; try < 60; try++)); do
        if [[ "$kind" == compute-environment ]]; then
            status="$(awst batch describe-compute-environments --compute-environments "$name" \
                --query 'computeEnvironments[0].status')"
        else
            status="$(awst batch describe-job-queues --job-queues "$name" --query 'jobQueues[0].status')"
        fi
        case "$status" in
            VALID) return 0 ;;
            INVALID) die "$EX_AWS" "AWS Batch $kind $name is INVALID (see its statusReason)" ;;
        esac
        sleep 5
    done
    die "$EX_AWS" "AWS Batch $kind $name did not become VALID within 5 minutes"
}

export BATCH_COMPUTE_ENVIRONMENT BATCH_JOB_DEFINITION BATCH_MAX_VCPUS BATCH_SERVICE_ROLE_ARN
python3 - "$WORK/batch-ce.json" <<'EOF'
import json
import os
import sys

env = os.environ
compute_environment = {
    "computeEnvironmentName": env["BATCH_COMPUTE_ENVIRONMENT"],
    "type": "MANAGED",
    "state": "ENABLED",
    "serviceRole": env["BATCH_SERVICE_ROLE_ARN"],
    "computeResources": {
        "type": "FARGATE",
        "maxvCpus": int(env["BATCH_MAX_VCPUS"]),
        "subnets": [s for s in env["SUBNETS"].split(",") if s],
        "securityGroupIds": [g for g in env["SECURITY_GROUPS"].split(",") if g],
    },
}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(compute_environment, f, indent=2)
EOF
awsr batch describe-compute-environments --compute-environments "$BATCH_COMPUTE_ENVIRONMENT" \
    --query 'computeEnvironments[0]' >"$WORK/batch-ce-current.json"
if [[ "$(cat "$WORK/batch-ce-current.json")" == null ]]; then
    BATCH_COMPUTE_ENVIRONMENT_ARN="$(awst batch create-compute-environment \
        --cli-input-json "file://$WORK/batch-ce.json" --query computeEnvironmentArn)"
    changed "created AWS Batch compute environment $BATCH_COMPUTE_ENVIRONMENT (Fargate, up to $BATCH_MAX_VCPUS vCPUs)"
    batch_wait_valid compute-environment "$BATCH_COMPUTE_ENVIRONMENT"
else
    BATCH_COMPUTE_ENVIRONMENT_ARN="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["computeEnvironmentArn"])' \
        <"$WORK/batch-ce-current.json")"
    if python3 "$WORK/contains.py" "$WORK/batch-ce.json" "$WORK/batch-ce-current.json"; then
        say "AWS Batch compute environment $BATCH_COMPUTE_ENVIRONMENT: unchanged"
    else
        # What can change in place (its type and service role cannot: delete it to change those).
        resources="$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["computeResources"]
print(json.dumps({k: r[k] for k in ("maxvCpus", "subnets", "securityGroupIds")}))' "$WORK/batch-ce.json")"
        awsr batch update-compute-environment --compute-environment "$BATCH_COMPUTE_ENVIRONMENT" \
            --state ENABLED --compute-resources "$resources" >/dev/null
        changed "updated AWS Batch compute environment $BATCH_COMPUTE_ENVIRONMENT"
        batch_wait_valid compute-environment "$BATCH_COMPUTE_ENVIRONMENT"
    fi
fi

cat >"$WORK/batch-queue.json" <<EOF
{"jobQueueName": "$BATCH_JOB_QUEUE", "state": "ENABLED", "priority": 1,
 "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "$BATCH_COMPUTE_ENVIRONMENT_ARN"}]}
EOF
awsr batch describe-job-queues --job-queues "$BATCH_JOB_QUEUE" --query 'jobQueues[0]' >"$WORK/batch-queue-current.json"
if [[ "$(cat "$WORK/batch-queue-current.json")" == null ]]; then
    awsr batch create-job-queue --cli-input-json "file://$WORK/batch-queue.json" >/dev/null
    changed "created AWS Batch job queue $BATCH_JOB_QUEUE"
    batch_wait_valid job-queue "$BATCH_JOB_QUEUE"
elif python3 "$WORK/contains.py" "$WORK/batch-queue.json" "$WORK/batch-queue-current.json"; then
    say "AWS Batch job queue $BATCH_JOB_QUEUE: unchanged"
else
    awsr batch update-job-queue --job-queue "$BATCH_JOB_QUEUE" --state ENABLED --priority 1 \
        --compute-environment-order "order=1,computeEnvironment=$BATCH_COMPUTE_ENVIRONMENT_ARN" >/dev/null
    changed "updated AWS Batch job queue $BATCH_JOB_QUEUE"
    batch_wait_valid job-queue "$BATCH_JOB_QUEUE"
fi

# The job definition is the task definition in Batch's terms: the same image (deploy.sh registers
# a revision of both), roles, environment, log group and stream prefix, read-only root with /tmp on
# the task's storage; CPU units become vCPUs (1024 = 1). One attempt: a child that dies is left to
# the sweeper like any task (a Batch retry would only join the job again).
python3 - "$WORK/taskdef.json" "$WORK/batch-jobdef.json" <<'EOF'
import json
import os
import sys

taskdef = json.load(open(sys.argv[1], encoding="utf-8"))
[container] = taskdef["containerDefinitions"]
jobdef = {
    "jobDefinitionName": os.environ["BATCH_JOB_DEFINITION"],
    "type": "container",
    "platformCapabilities": ["FARGATE"],
    "retryStrategy": {"attempts": 1},
    "containerProperties": {
        "image": container["image"],
        "jobRoleArn": taskdef["taskRoleArn"],
        "executionRoleArn": taskdef["executionRoleArn"],
        "resourceRequirements": [
            {"type": "VCPU", "value": f"{int(taskdef['cpu']) / 1024:g}"},
            {"type": "MEMORY", "value": str(taskdef["memory"])},
        ],
        "environment": container["environment"],
        "readonlyRootFilesystem": container["readonlyRootFilesystem"],
        "volumes": taskdef["volumes"],
        "mountPoints": container["mountPoints"],
        "ephemeralStorage": taskdef["ephemeralStorage"],
        "runtimePlatform": taskdef["runtimePlatform"],
        "networkConfiguration": {"assignPublicIp": os.environ["ASSIGN_PUBLIC_IP"]},
        "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
        "logConfiguration": container["logConfiguration"],
    },
}
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(jobdef, f, indent=2)
EOF
# Compared with the latest ACTIVE revision (deploy.sh adds revisions; null: none yet).
awsr batch describe-job-definitions --job-definition-name "$BATCH_JOB_DEFINITION" --status ACTIVE \
    --query 'max_by(jobDefinitions, &revision)' >"$WORK/batch-jobdef-current.json"
if [[ "$(cat "$WORK/batch-jobdef-current.json")" != null ]] \
        && python3 "$WORK/contains.py" "$WORK/batch-jobdef.json" "$WORK/batch-jobdef-current.json"; then
    say "AWS Batch job definition $BATCH_JOB_DEFINITION: unchanged"
else
    arn="$(awst batch register-job-definition --cli-input-json "file://$WORK/batch-jobdef.json" \
        --query jobDefinitionArn)"
    changed "registered AWS Batch job definition $arn"
fi

# ---- settings file ---------------------------------------------------------------------------
{
    echo "# Written by setup.sh; read by deploy.sh, run-task.sh and show_logs.sh. No secrets."
    for name in "${SETTINGS[@]}"; do printf '%s=%s\n' "$name" "${!name}"; done
    printf '%s=%s\n' ECR_URI "$ECR_URI" TASK_ROLE_ARN "$TASK_ROLE_ARN" \
        EXECUTION_ROLE_ARN "$EXECUTION_ROLE_ARN" CONTAINER_NAME worker \
        BATCH_COMPUTE_ENVIRONMENT "$BATCH_COMPUTE_ENVIRONMENT" BATCH_JOB_QUEUE "$BATCH_JOB_QUEUE" \
        BATCH_JOB_DEFINITION "$BATCH_JOB_DEFINITION"
} >"$WORK/env.deploy"
if [[ -f "$ENV_FILE" ]] && cmp -s "$WORK/env.deploy" "$ENV_FILE"; then
    say "$ENV_FILE: unchanged"
else
    cp "$WORK/env.deploy" "$ENV_FILE"
    changed "wrote $ENV_FILE"
fi

say "done: $CHANGES change(s)"
