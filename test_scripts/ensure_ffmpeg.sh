#!/usr/bin/env bash
# Make sure ffmpeg and ffprobe are installed (issue 6). Idempotent: does nothing when both exist.
# Installs the distribution package with apt-get (needs root, as in CI and the container build).
set -euo pipefail

if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    echo "ffmpeg present: $(ffmpeg -hide_banner -version | head -n 1)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ffmpeg is missing and apt-get is not available; install ffmpeg with your package manager" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null

ffmpeg -hide_banner -version | head -n 1
