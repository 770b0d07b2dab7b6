#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is installed (the HTML report's browser test needs it).
# Idempotent: does nothing when a chromium binary is already on PATH. Needs root (or sudo) to install.
set -euo pipefail

find_chromium() {
    command -v chromium || command -v chromium-browser || true
}

existing="$(find_chromium)"
if [[ -n "$existing" ]]; then
    echo "ensure_chromium: found $existing ($("$existing" --version 2>/dev/null || echo 'version unknown')); nothing to do"
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure_chromium: chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
fi

echo "ensure_chromium: chromium not found; installing Debian's 'chromium' package with apt-get"
export DEBIAN_FRONTEND=noninteractive
# wait (up to 5 minutes) for another apt/dpkg process to release its lock instead of failing
APT_WAIT=(-o DPkg::Lock::Timeout=300)
"${SUDO[@]}" apt-get "${APT_WAIT[@]}" update -qq
"${SUDO[@]}" apt-get "${APT_WAIT[@]}" install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null

installed="$(find_chromium)"
if [[ -z "$installed" ]]; then
    echo "ensure_chromium: apt-get finished but no chromium binary is on PATH" >&2
    exit 1
fi
echo "ensure_chromium: installed $installed ($("$installed" --version 2>/dev/null || echo 'version unknown'))"
