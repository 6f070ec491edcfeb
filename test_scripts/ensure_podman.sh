#!/usr/bin/env bash
# Make a container engine usable for the image tier (issue 14) and print the command to use.
#
# A working `docker` (one whose daemon answers) wins. Otherwise podman: installed with apt-get when
# missing, and configured by a containers.conf of our own (CONTAINERS_CONF, under
# ~/.cache/plus-worker/podman) rather than the machine's:
#   - cgroup_manager = "cgroupfs", runtime = "runc": no systemd here, and crun refuses a mixed
#     cgroup v1/v2 layout;
#   - events_logger = "file": no journald;
#   - network_backend = "cni": the plugins installed here (podman would pick netavark, not
#     installed, on fresh storage);
#   - default_ulimits at the machine's own hard limits: podman's defaults ask for more than a
#     nested machine may grant, and every `run` fails.
# Prints two lines on stdout: `ENGINE=<docker|podman>` and `CONTAINERS_CONF=<path or empty>`;
# progress goes to stderr.
set -euo pipefail

case "${1:-}" in
    -h | --help)
        echo "Usage: test_scripts/ensure_podman.sh   (prints ENGINE=... and CONTAINERS_CONF=...)"
        exit 0
        ;;
esac

if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    echo "ENGINE=docker"
    echo "CONTAINERS_CONF="
    exit 0
fi

packages=(podman runc uidmap conmon containernetworking-plugins golang-github-containers-common
    mmdebstrap fuse-overlayfs)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ensure_podman: neither a working docker nor podman, and no apt-get to install podman" >&2
        exit 1
    fi
    SUDO=()
    [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
    echo "ensure_podman: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq >&2
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

conf_dir="${XDG_CACHE_HOME:-$HOME/.cache}/plus-worker/podman"
mkdir -p "$conf_dir"
nofile="$(ulimit -Hn)"
[[ "$nofile" != unlimited ]] || nofile=1048576
nproc="$(ulimit -Hu)"
[[ "$nproc" != unlimited ]] && ((nproc < 32768)) || nproc=32768
conf="$conf_dir/containers.conf"
cat >"$conf.new" <<CONF
# Written by test_scripts/ensure_podman.sh (issue 14); see the comment there.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[network]
network_backend = "cni"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
mv "$conf.new" "$conf"
echo "ENGINE=podman"
echo "CONTAINERS_CONF=$conf"
