#!/usr/bin/env bash
# Run one real job end to end on the local stack: bootstrap, start DynamoDB Local + SeaweedFS,
# write a job as plus-engine does, run `python -m src.worker`, print the final job record.
# Usage: test_scripts/demo.sh [--scenario success|fail] [--keep-stack]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/test_scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/python" test_scripts/demo.py "$@"
