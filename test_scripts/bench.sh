#!/usr/bin/env bash
# All benchmarks (tests/bench): each measures its baseline in the same run and prints ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/test_scripts/bootstrap.sh"
"$root/test_scripts/ensure_ffmpeg.sh"
for bench in tests/bench/bench_*.py; do
  module="${bench%.py}"
  "$root/.venv/bin/python" -m "${module//\//.}" "$@"
done
