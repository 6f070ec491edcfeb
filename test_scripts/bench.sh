#!/usr/bin/env bash
# All benchmarks (tests/bench): each measures its baselines in the same run, writes its tables,
# targets and raw samples to bench-results/NAME.json and exits non-zero when a target is missed;
# tests/bench/report.py then writes BENCHMARKS.md (tables + PNG plots) from that JSON.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: test_scripts/bench.sh [--quick]

Runs every tests/bench/bench_*.py with .venv/bin/python (building .venv and installing ffmpeg
first when missing), then writes BENCHMARKS.md from their JSON (bench-results/*.json, the raw
samples; plots in benchmarks/). Each benchmark measures its baselines in the same run.

  --quick        small sizes that exercise every code path in a few minutes (also BENCH_QUICK=1);
                 its figures judge no target
  BENCHMARKS_FILE  where to write the report (default BENCHMARKS.md)
  BENCH_ONLY       one benchmark, e.g. BENCH_ONLY=bench_engine

Exits 0 only when every benchmark ran and every target held (not judged in quick mode).
The full run takes under 30 minutes on 2 cores.
USAGE
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    --quick) export BENCH_QUICK=1; shift ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/test_scripts/bootstrap.sh"
"$root/test_scripts/ensure_ffmpeg.sh"
report="${BENCHMARKS_FILE:-$root/BENCHMARKS.md}"
results="$root/bench-results"
export BENCH_RESULTS_DIR="$results"
rm -rf "$results"
mkdir -p "$results"
began=$SECONDS
status=0
for bench in tests/bench/${BENCH_ONLY:-bench_*}.py; do
    name="$(basename "$bench" .py)"
    module="tests.bench.$name"
    args=()
    # bench_start has no quick mode of its own: fewer runs, host only
    if [[ $name == bench_start && -n ${BENCH_QUICK:-} ]]; then args=(--runs 2 --host-only); fi
    echo "bench.sh: python -m $module ${args[*]:-}" >&2
    code=0
    "$root/.venv/bin/python" -m "$module" "${args[@]}" 2>&1 | tee "$results/$name.out" || code=$?
    echo "bench.sh: $name exit code $code after $((SECONDS - began)) s" >&2
    [[ $code -eq 0 ]] || status=$code
done
code=0
"$root/.venv/bin/python" -m tests.bench.report "$results" "$report" || code=$?
[[ $code -eq 0 ]] || status=$code
echo "bench.sh: results written to $report in $((SECONDS - began)) s (exit $status)"
exit "$status"
