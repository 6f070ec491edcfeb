#!/usr/bin/env bash
# test_scripts/fail.sh — run a job that must fail (FAILED with a message, exit code 1) and check
# its final record; same options as success.sh, which holds the shared logic.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/success.sh" --scenario fail "$@"
