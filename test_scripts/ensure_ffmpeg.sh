#!/usr/bin/env bash
# Make sure ffmpeg and ffprobe are installed (issue 6). Idempotent: does nothing when both exist.
# Installs the distribution package with apt-get (needs root, as in CI and the container build).
set -euo pipefail
# shellcheck source=test_scripts/apt_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt_common.sh"

if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    echo "ffmpeg present: $(ffmpeg -hide_banner -version | head -n 1)"
    exit 0
fi

apt_install ffmpeg ffmpeg
ffmpeg -hide_banner -version | head -n 1
