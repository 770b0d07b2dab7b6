#!/usr/bin/env bash
# Make sure a Java 17+ runtime is installed (Spark, engine=spark, runs on the JVM): Debian's
# openjdk-17-jre-headless. Idempotent: does nothing when `java` 17 or newer is on PATH.
set -euo pipefail

java_major() {
    command -v java >/dev/null 2>&1 || { echo 0; return; }
    java -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p' | grep -E '^[0-9]+$' || echo 0
}

if (( $(java_major) >= 17 )); then
    echo "ensure_java: found Java $(java_major) ($(command -v java)); nothing to do"
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure_java: Java 17 is missing and installing it needs root (apt-get install openjdk-17-jre-headless)" >&2
    exit 1
fi

echo "ensure_java: no Java 17; installing Debian's 'openjdk-17-jre-headless' with apt-get"
export DEBIAN_FRONTEND=noninteractive
# wait (up to 5 minutes) for another apt/dpkg process to release its lock instead of failing
APT_WAIT=(-o DPkg::Lock::Timeout=300)
"${SUDO[@]}" apt-get "${APT_WAIT[@]}" update -qq
"${SUDO[@]}" apt-get "${APT_WAIT[@]}" install -y -qq --no-install-recommends \
    openjdk-17-jre-headless >/dev/null

if (( $(java_major) < 17 )); then
    echo "ensure_java: apt-get finished but no Java 17 is on PATH" >&2
    exit 1
fi
echo "ensure_java: installed Java $(java_major) ($(command -v java))"
