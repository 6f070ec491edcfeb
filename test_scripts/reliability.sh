#!/usr/bin/env bash
# The reliability tier alone (fault injection, hostile input, tenant isolation, fuzzing, secrets),
# against the real local stack; prints the reliability report table at the end. Extra args go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/test_scripts/bootstrap.sh"
"$root/test_scripts/ensure_ffmpeg.sh"
exec "$root/.venv/bin/python" -m pytest tests/reliability -p no:cacheprovider "$@"
