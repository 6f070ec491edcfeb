#!/usr/bin/env bash
# The Python base image for the image tier (issue 14); prints its name on stdout.
#
# Where a container registry answers, that is the Dockerfile's default (the official
# python:3.12-slim-bookworm). Where none does (this project's machines reach only Debian's, PyPI's
# and npm's registries), a Debian bookworm root file system is made with mmdebstrap from the
# machine's own apt sources — python3, venv, CA certificates, plus the machine's extra CA
# certificates (HTTPS may be re-signed by a proxy here) — and imported as a local image. It is
# cached under ~/.cache/plus-worker/base, keyed on the day, the apt sources and this script, so
# the runs of one day reuse it and the next day's picks up Debian's security updates.
#
# Usage: test_scripts/ensure_base_image.sh ENGINE      (ENGINE: docker or podman)
set -euo pipefail

engine="${1:?usage: ensure_base_image.sh docker|podman}"
official="${OFFICIAL_PYTHON_IMAGE:-docker.io/library/python:3.12-slim-bookworm}"

if [[ "${PLUS_WORKER_LOCAL_BASE:-}" != 1 ]]; then
    if "$engine" image inspect "$official" >/dev/null 2>&1 ||
        timeout 20 "$engine" pull -q "$official" >/dev/null 2>&1; then
        echo "$official"
        exit 0
    fi
    echo "ensure_base_image: no registry answered for $official; using a local Debian base" >&2
fi

sources=()
[[ ! -f /etc/apt/sources.list ]] || sources+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] && sources+=("$f")
done
((${#sources[@]})) || { echo "ensure_base_image: no apt sources on this machine" >&2; exit 1; }
extra_certs=(/usr/local/share/ca-certificates/*.crt)
[[ -e "${extra_certs[0]}" ]] || extra_certs=()

key="$({
    date -u +%F
    cat "${sources[@]}" "${extra_certs[@]}" "${BASH_SOURCE[0]}"
} | sha256sum | cut -c1-12)"
image="localhost/plus-worker-base:bookworm-$key"
if "$engine" image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/plus-worker/base"
mkdir -p "$cache"
tarball="$cache/bookworm-$key.tar"
if [[ ! -s "$tarball" ]]; then
    command -v mmdebstrap >/dev/null || { echo "ensure_base_image: mmdebstrap is missing" >&2; exit 1; }
    rm -f "$cache"/bookworm-*.tar  # an older day's base
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    for f in "${extra_certs[@]}"; do cp "$f" "$work/"; done
    echo "ensure_base_image: building the Debian base with mmdebstrap (about a minute)" >&2
    # The machine's source files (one-line or deb822) are the mirrors. Documentation, manuals and
    # translations are left out, as the official slim images do; /usr is merged by mmdebstrap's
    # hook rather than the usrmerge package (which would pull in Perl). "$1" in a hook is the root.
    # shellcheck disable=SC2016
    mmdebstrap --quiet --variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --include=ca-certificates,python3,python3-venv,python-is-python3 \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook="cp $work/*.crt \"\$1/usr/local/share/ca-certificates/\" 2>/dev/null || true" \
        --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        bookworm "$tarball.part" "${sources[@]}" >&2
    mv "$tarball.part" "$tarball"
fi
"$engine" import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$image" >/dev/null
echo "$image"
