#!/usr/bin/env bash
# mypy --strict and ruff, then the whole test suite: unit, integration (real DynamoDB Local + SeaweedFS, ffmpeg,
# Chromium), the compatibility corpus (tests/compat), reliability, ops, and last the image tier (builds the
# Dockerfile with docker or podman and runs the container; issue 14).
# Installs what it needs on a fresh machine (venv, Java/ffmpeg/chromium via apt when missing). Extra args go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/test_scripts/bootstrap.sh"
"$root/test_scripts/ensure_ffmpeg.sh"
"$root/test_scripts/ensure_chromium.sh"
# Tools installed into the venv (shellcheck, hadolint, moto_server, aws, weed) come first (issue 11).
export PATH="$root/.venv/bin:$PATH"
# Types and lint hold the line before any test runs (issue 15 §8); both are configured in pyproject.toml.
"$root/.venv/bin/mypy"
"$root/.venv/bin/ruff" check --quiet
exec "$root/.venv/bin/python" -m pytest tests/unit tests/integration tests/compat tests/reliability tests/ops tests/image -p no:cacheprovider "$@"
