# shellcheck shell=bash
# Shared by test_scripts/ensure_*.sh (sourced; not run on its own): install a Debian package when a
# tool is missing, the way CI and the container build do.

# apt_install TOOL PACKAGE: install PACKAGE with apt-get (as root, or through sudo). Without apt-get,
# one line on stderr naming TOOL and PACKAGE, and exit 1.
apt_install() {
    local tool="$1" package="$2"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$tool is missing and apt-get is not available; install $package with your package manager" >&2
        exit 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}
