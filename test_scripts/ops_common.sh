# shellcheck shell=bash
# Shared by setup.sh, deploy.sh, run-task.sh, show_logs.sh and test_scripts/success.sh (sourced;
# not run on its own).
# The caller sets PROG (its name in messages) before sourcing this file.
#
# Exit codes of the operations scripts' own errors. They avoid 0-3, 70 and 75, which are the
# worker's exit codes that run-task.sh passes through (1 = the job FAILED).
EX_USAGE=64   # bad command line: unknown option, missing or invalid value
EX_AWS=74     # an AWS call failed (the aws CLI's message is printed above)
EX_CONFIG=78  # configuration: settings or .env.deploy missing, no aws CLI, no AWS credentials

# die CODE MESSAGE...: print "<PROG>: error: MESSAGE" on stderr and exit with CODE.
die() {
    local code="$1"
    shift
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit "$code"
}

say() { printf '%s: %s\n' "$PROG" "$*"; }

# need_value OPTION [VALUE]: the option was given a non-empty value.
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$EX_USAGE" "$1 needs a value"; }

# read_settings FILE: KEY=VALUE lines of FILE into the caller's associative array CFG
# (`declare -A CFG=()` first). Nothing in the file is executed; other lines are ignored.
read_settings() {
    local key value
    while IFS='=' read -r key value; do
        if [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]]; then
            # shellcheck disable=SC2034  # CFG belongs to the caller
            CFG["$key"]="$value"
        fi
    done <"$1"
}

# aws_cli ARGS...: the aws CLI; any failure returns EX_AWS (its message stays on stderr), so a
# script stopped by `set -e` never exits with the CLI's own 255/254/252.
aws_cli() { aws "$@" || return "$EX_AWS"; }

# require_aws REGION: the aws CLI is installed and finds credentials, else one line and
# EX_CONFIG. Sets CALLER_ACCOUNT and CALLER_ARN (sts get-caller-identity: cheap, no
# permissions needed, and answered by the emulator in tests).
require_aws() {
    local region="$1" out err code=0
    command -v aws >/dev/null 2>&1 \
        || die "$EX_CONFIG" "the aws CLI is not installed (pip install awscli, or see README)"
    err="$(mktemp)"
    out="$(aws --region "$region" --output text sts get-caller-identity --query '[Account, Arn]' \
        2>"$err")" || code=$?
    if [[ $code -ne 0 ]]; then
        local message
        message="$(grep -v '^[[:space:]]*$' "$err" | tail -n 1)"
        rm -f "$err"
        case "$code:$message" in
            127:*) die "$EX_CONFIG" "the aws CLI is not installed (pip install awscli, or see README)" ;;
            *"Unable to locate credentials"* | *"could not be found"* | *"NoCredentials"*)
                die "$EX_CONFIG" "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run aws configure)" ;;
            *) die "$EX_AWS" "checking the AWS credentials failed: ${message:-aws exited $code}" ;;
        esac
    fi
    rm -f "$err"
    # shellcheck disable=SC2034  # for the caller
    read -r CALLER_ACCOUNT CALLER_ARN <<<"$out"
}
