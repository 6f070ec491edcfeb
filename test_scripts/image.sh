#!/usr/bin/env bash
# The image tier alone (issue 14): builds the Dockerfile with docker or podman (installing podman
# when neither works), without and with the screenshot browser, on the official Python base where a
# registry answers and on a locally made Debian base where none does; then runs the container
# against a local stack: a short job, a media job, SIGTERM (`stop`) during a nap and during an
# ffmpeg encode, uid 10001, an empty environment, the README's `docker run` example, each hardened
# (read-only root, /tmp only, no capabilities). Prints each variant's size; fails above its budget.
# test_scripts/test.sh runs the same tier last. Extra args go to pytest.
set -euo pipefail

case "${1:-}" in
    -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/test_scripts/bootstrap.sh"
"$root/test_scripts/ensure_ffmpeg.sh" >/dev/null
export PATH="$root/.venv/bin:$PATH"
exec "$root/.venv/bin/python" -m pytest tests/image -p no:cacheprovider "$@"
