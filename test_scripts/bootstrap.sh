#!/usr/bin/env bash
# Create .venv with the project and its dev tools. Idempotent: does nothing when .venv is up to
# date, reinstalls when pyproject.toml changes. Afterwards .venv/bin/python has everything the
# tests and test_scripts/*.sh need.
#
# pip's output (hundreds of lines of warnings on some machines) goes to .venv/pip-install.log;
# on failure the log's tail is printed and the exit code is non-zero.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: test_scripts/bootstrap.sh [--help]

Creates .venv (with python3 -m venv) and installs the project with its dev extra into it,
unless .venv already matches pyproject.toml. pip's output goes to .venv/pip-install.log.
USAGE
}

case "${1:-}" in
    "") ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
[[ ! -f "$stamp" ]] || exit 0

log="$venv/pip-install.log"
echo "bootstrap: installing the project and its dev tools into .venv (about a minute; log: $log)" >&2
python3 -m venv "$venv"
if ! {
    "$venv/bin/python" -m pip install --upgrade pip &&
        "$venv/bin/python" -m pip install -e "${root}[dev]"
} >"$log" 2>&1; then
    echo "bootstrap: error: pip install failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
fi
rm -f "$venv"/.installed-*
touch "$stamp"
echo "bootstrap: done" >&2
