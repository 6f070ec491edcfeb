#!/usr/bin/env bash
# All benchmarks (tests/bench): each measures its baseline in the same run and prints ratios.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: test_scripts/bench.sh [ARGS...]

Runs every tests/bench/bench_*.py with .venv/bin/python (building .venv and installing ffmpeg
first when missing); ARGS go to each benchmark. Each prints its results and the ratio to the
baseline it measures in the same run.
USAGE
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/test_scripts/bootstrap.sh"
"$root/test_scripts/ensure_ffmpeg.sh"
for bench in tests/bench/bench_*.py; do
  module="${bench%.py}"
  "$root/.venv/bin/python" -m "${module//\//.}" "$@"
done
