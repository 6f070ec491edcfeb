#!/usr/bin/env bash
# deploy.sh — build the image for linux/amd64, push it as :<git sha> and :latest, and register a
# task-definition revision (and an AWS Batch job-definition revision) pinned to the SHA tag.
# Reads .env.deploy written by setup.sh.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=deploy
# shellcheck source=test_scripts/ops_common.sh
source "$SCRIPT_DIR/test_scripts/ops_common.sh"

usage() {
    cat <<'USAGE'
Usage: ./deploy.sh [options]

Builds the image with docker buildx for linux/amd64, pushes <ECR_URI>:<git sha> and
<ECR_URI>:latest, then registers a new revision of the task definition whose image is the
SHA tag (so a later push of :latest never changes what a revision runs), and likewise a new
revision of the AWS Batch job definition (BATCH_JOB_DEFINITION in the env file) for
`run-task.sh --batch`.

  --dry-run          print what would be done; no docker commands, no AWS writes. Needs
                     no credentials and, without an env file, shows .env.deploy.example
  --tag TAG          image tag to push and pin (default: the 12-character git SHA of HEAD)
  --allow-dirty      deploy although tracked files have uncommitted changes (tag gets -dirty)
  --region REGION    AWS region (default: REGION from the env file)
  --env-file PATH    settings written by setup.sh (ENV_FILE; default ./.env.deploy)
  --help             show this help

Exit codes: 0 done; 64 bad command line (or uncommitted changes without --allow-dirty);
74 an AWS or docker step failed; 78 configuration (env file, settings or task definition
missing, no git commit, no aws CLI, no AWS credentials).
USAGE
}


DRY_RUN=0
ALLOW_DIRTY=0
TAG=""
REGION_OPT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1; shift ;;
        --tag) need_value "$@"; TAG="$2"; shift 2 ;;
        --allow-dirty) ALLOW_DIRTY=1; shift ;;
        --region) need_value "$@"; REGION_OPT="$2"; shift 2 ;;
        --env-file) need_value "$@"; ENV_FILE="$2"; shift 2 ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; die "$EX_USAGE" "unknown option: $1" ;;
    esac
done

ENV_FILE="${ENV_FILE:-$SCRIPT_DIR/.env.deploy}"
EXAMPLE=0
if [[ ! -f "$ENV_FILE" ]]; then
    [[ $DRY_RUN -eq 1 ]] || die "$EX_CONFIG" "$ENV_FILE not found: run ./setup.sh first"
    say "$ENV_FILE not found: showing what would be done with .env.deploy.example's settings"
    ENV_FILE="$SCRIPT_DIR/.env.deploy.example"
    EXAMPLE=1
fi
declare -A CFG=()
read_settings "$ENV_FILE"
for key in REGION ECR_URI TASK_FAMILY; do
    [[ -n "${CFG[$key]:-}" ]] || die "$EX_CONFIG" "$key missing from $ENV_FILE: run ./setup.sh again"
done
REGION="${REGION_OPT:-${CFG[REGION]}}"
ECR_URI="${CFG[ECR_URI]}"
TASK_FAMILY="${CFG[TASK_FAMILY]}"
CONTAINER_NAME="${CFG[CONTAINER_NAME]:-worker}"

# A dry run reads the current task definition when it can (real settings and credentials);
# it never needs credentials.
READ_AWS=1
if [[ $DRY_RUN -eq 0 ]]; then
    require_aws "$REGION"
elif [[ $EXAMPLE -eq 1 ]]; then
    READ_AWS=0
elif ! (require_aws "$REGION") 2>/dev/null; then
    say "no aws CLI or no AWS credentials: the current task definition is not read"
    READ_AWS=0
fi

# run CMD...: execute, or only print it with --dry-run.
run() {
    if [[ $DRY_RUN -eq 1 ]]; then
        printf 'deploy: would run:'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

if [[ -z "$TAG" ]]; then
    TAG="$(git -C "$SCRIPT_DIR" rev-parse --short=12 HEAD)" \
        || die "$EX_CONFIG" "no git commit to tag the image with: pass --tag"
    if [[ -n "$(git -C "$SCRIPT_DIR" status --porcelain --untracked-files=no)" ]]; then
        if [[ $ALLOW_DIRTY -eq 1 ]]; then
            TAG="$TAG-dirty"
        elif [[ $DRY_RUN -eq 1 ]]; then
            say "warning: uncommitted changes; a real deploy needs a commit or --allow-dirty"
        else
            die "$EX_USAGE" "uncommitted changes to tracked files: commit them or pass --allow-dirty"
        fi
    fi
fi
[[ "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "$EX_USAGE" "invalid image tag: $TAG"
IMAGE="$ECR_URI:$TAG"
REGISTRY="${ECR_URI%%/*}"
say "image $IMAGE (also :latest), task definition family $TASK_FAMILY, region $REGION"

# 1. log in to ECR, build for Fargate's platform and push both tags.
if [[ $DRY_RUN -eq 1 ]]; then
    say "would run: aws ecr get-login-password --region $REGION | docker login --username AWS --password-stdin $REGISTRY"
else
    aws_cli ecr get-login-password --region "$REGION" \
        | docker login --username AWS --password-stdin "$REGISTRY" \
        || die "$EX_AWS" "could not log in to $REGISTRY"
fi
run docker buildx build --platform linux/amd64 --provenance=false \
    --tag "$IMAGE" --tag "$ECR_URI:latest" --push "$SCRIPT_DIR" \
    || die "$EX_AWS" "docker buildx build failed"

# 2. a new task-definition revision: the current one with the image pinned to the SHA tag.
if [[ $READ_AWS -eq 0 ]]; then
    say "would register the latest revision of $TASK_FAMILY with container $CONTAINER_NAME's image set to $IMAGE"
    say "dry run: nothing was built, pushed or registered"
    exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
aws_cli --region "$REGION" --output json ecs describe-task-definition --task-definition "$TASK_FAMILY" \
    --query taskDefinition >"$WORK/current.json" \
    || die "$EX_CONFIG" "task definition $TASK_FAMILY not found: run ./setup.sh first"
python3 - "$WORK/current.json" "$WORK/new.json" "$CONTAINER_NAME" "$IMAGE" <<'PY' || exit "$EX_CONFIG"
import json
import sys

current_path, new_path, container, image = sys.argv[1:5]
taskdef = json.load(open(current_path, encoding="utf-8"))
# Fields describe-task-definition returns but register-task-definition does not accept.
for key in ("taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
            "registeredAt", "registeredBy", "deregisteredAt"):
    taskdef.pop(key, None)
names = [c["name"] for c in taskdef["containerDefinitions"]]
if container not in names:
    sys.exit(f"deploy: error: no container {container!r} in the task definition (has {names})")
for c in taskdef["containerDefinitions"]:
    if c["name"] == container:
        c["image"] = image
json.dump(taskdef, open(new_path, "w", encoding="utf-8"), indent=2)
PY
if [[ $DRY_RUN -eq 1 ]]; then
    say "would register this task definition:"
    cat "$WORK/new.json"; echo
else
    arn="$(aws_cli --region "$REGION" --output text ecs register-task-definition \
        --cli-input-json "file://$WORK/new.json" --query taskDefinition.taskDefinitionArn)" \
        || die "$EX_AWS" "could not register the task definition"
    say "registered $arn with image $IMAGE"
fi

# 3. the AWS Batch job definition (run-task.sh --batch): its latest revision with the same image.
BATCH_JOB_DEFINITION="${CFG[BATCH_JOB_DEFINITION]:-}"
if [[ -z "$BATCH_JOB_DEFINITION" ]]; then
    say "no BATCH_JOB_DEFINITION in $ENV_FILE (written before AWS Batch support): no job definition to update"
    [[ $DRY_RUN -eq 0 ]] || say "dry run: nothing was built, pushed or registered"
    exit 0
fi
aws_cli --region "$REGION" --output json batch describe-job-definitions --job-definition-name "$BATCH_JOB_DEFINITION" \
    --status ACTIVE --query 'max_by(jobDefinitions, &revision)' >"$WORK/jobdef-current.json" \
    || die "$EX_AWS" "could not read the AWS Batch job definition $BATCH_JOB_DEFINITION"
python3 - "$WORK/jobdef-current.json" "$WORK/jobdef-new.json" "$IMAGE" <<'PY' || exit "$EX_CONFIG"
import json
import sys

current_path, new_path, image = sys.argv[1:4]
jobdef = json.load(open(current_path, encoding="utf-8"))
if not jobdef:
    sys.exit("deploy: error: AWS Batch job definition not found: run ./setup.sh first")
# Fields describe-job-definitions returns but register-job-definition does not accept.
for key in ("jobDefinitionArn", "revision", "status", "containerOrchestrationType"):
    jobdef.pop(key, None)
jobdef["containerProperties"]["image"] = image
json.dump(jobdef, open(new_path, "w", encoding="utf-8"), indent=2)
PY
if [[ $DRY_RUN -eq 1 ]]; then
    say "would register this AWS Batch job definition:"
    cat "$WORK/jobdef-new.json"; echo
    say "dry run: nothing was built, pushed or registered"
else
    arn="$(aws_cli --region "$REGION" --output text batch register-job-definition \
        --cli-input-json "file://$WORK/jobdef-new.json" --query jobDefinitionArn)" \
        || die "$EX_AWS" "could not register the AWS Batch job definition"
    say "registered $arn with image $IMAGE"
fi
