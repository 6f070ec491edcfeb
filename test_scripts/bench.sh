#!/usr/bin/env bash
# All benchmarks (tests/bench): each measures its baseline in the same run and prints ratios;
# what they print is written to BENCHMARKS.md with the machine and the date.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: test_scripts/bench.sh [ARGS...]

Runs every tests/bench/bench_*.py with .venv/bin/python (building .venv and installing ffmpeg
first when missing); ARGS go to each benchmark. Each prints its results and the ratio to the
baseline it measures in the same run. The printed results, with the machine's core count and the
date, are written to BENCHMARKS.md (set BENCHMARKS_FILE to write elsewhere, BENCH_ONLY=bench_engine
to run one). Exits non-zero when
a benchmark fails or misses its target.
USAGE
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/test_scripts/bootstrap.sh"
"$root/test_scripts/ensure_ffmpeg.sh"
report="${BENCHMARKS_FILE:-$root/BENCHMARKS.md}"
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
status=0
for bench in tests/bench/${BENCH_ONLY:-bench_*}.py; do
    module="${bench%.py}"
    module="${module//\//.}"
    # shellcheck disable=SC2016  # Markdown backticks, not a command substitution
    printf '\n## `python -m %s`\n\n```\n' "$module" >>"$body"
    code=0
    "$root/.venv/bin/python" -m "$module" "$@" 2>&1 | tee -a "$body" || code=$?
    printf '```\n\nexit code %s\n' "$code" >>"$body"
    [[ $code -eq 0 ]] || status=$code
done
{
    # shellcheck disable=SC2016
    printf '# Benchmarks\n\nWritten by `test_scripts/bench.sh` on %s: %s cores, %s, %s.\n' \
        "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$(uname -m)" "$(git rev-parse --short HEAD 2>/dev/null || echo 'no git')"
    printf 'Each benchmark measures its baseline in the same run; figures hold for this machine only.\n'
    cat "$body"
} >"$report"
echo "bench.sh: results written to $report"
exit "$status"
