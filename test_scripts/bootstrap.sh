#!/usr/bin/env bash
# Create .venv with the project and its dev tools, at exactly the versions of uv.lock (issue 14).
# Idempotent: does nothing when .venv is up to date, re-syncs when pyproject.toml or uv.lock
# changes. Afterwards .venv/bin/python has everything the tests and test_scripts/*.sh need.
#
# uv.lock is the one source of pinned versions (the Dockerfile installs from it too): pip installs
# the locked uv by its hashes, then `uv sync --locked` installs the rest, checking every hash and
# refusing a lock that no longer matches pyproject.toml (run `.venv/bin/uv lock` then).
# Their output (hundreds of lines of warnings on some machines) goes to .venv/install.log; on
# failure the log's tail is printed and the exit code is non-zero.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: test_scripts/bootstrap.sh [--help]

Creates .venv (with python3 -m venv) and installs the project with its dev extra into it, at the
versions of uv.lock, unless .venv already matches pyproject.toml and uv.lock. The installers'
output goes to .venv/install.log.
USAGE
}

case "${1:-}" in
    "") ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/uv.lock" | sha256sum | cut -c1-16)"
[[ ! -f "$stamp" ]] || exit 0

log="$venv/install.log"
echo "bootstrap: installing the project and its dev tools into .venv (log: $log)" >&2
python3 -m venv "$venv"
# uv reads the machine's CA certificates (HTTPS may be re-signed by a proxy) and never downloads
# a Python of its own: .venv keeps the python3 it was made with.
export UV_SYSTEM_CERTS=1 UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$venv"
if ! {
    "$venv/bin/python" "$root/test_scripts/lock_requirement.py" "$root/uv.lock" uv >"$venv/uv-requirement.txt" &&
        "$venv/bin/python" -m pip install --no-deps --require-hashes -r "$venv/uv-requirement.txt" &&
        "$venv/bin/uv" sync --project "$root" --locked --extra dev --python "$venv/bin/python"
} >"$log" 2>&1; then
    echo "bootstrap: error: installing from uv.lock failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
fi
rm -f "$venv"/.installed-*
touch "$stamp"
echo "bootstrap: done" >&2
