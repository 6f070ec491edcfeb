#!/usr/bin/env bash
# Make sure a headless Chromium is installed for web.screenshot (issue 12). Idempotent: does
# nothing when it exists. Installs Debian's `chromium` package with apt-get (needs root, as in CI
# and the container build); nothing is ever downloaded when the action runs.
set -euo pipefail
# shellcheck source=test_scripts/apt_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt_common.sh"

if command -v chromium >/dev/null 2>&1; then
    echo "chromium present: $(chromium --version 2>/dev/null | head -n 1)"
    exit 0
fi

apt_install chromium chromium
chromium --version 2>/dev/null | head -n 1
