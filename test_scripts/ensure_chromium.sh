#!/usr/bin/env bash
# Make sure a headless Chromium is installed for web.screenshot (issue 12). Idempotent: does
# nothing when it exists. Installs Debian's `chromium` package with apt-get (needs root, as in CI
# and the container build); nothing is ever downloaded when the action runs.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium present: $(chromium --version 2>/dev/null | head -n 1)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing and apt-get is not available; install chromium with your package manager" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null

chromium --version 2>/dev/null | head -n 1
