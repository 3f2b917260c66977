#!/usr/bin/env bash
# Installs what Affinity needs beyond the Swift toolchain: OpenBLAS (with its LAPACK) and pkg-config; and, best
# effort, chromium for the headless-browser test of `affinity report` (skipped visibly without it).
# With --spark (CI passes it): also Java (Debian's openjdk-17-jre-headless) and pyspark (from PyPI, into the venv
# $AFFINITY_SPARK_VENV, default ~/.cache/affinity-spark/venv) for the Spark batch-scoring test, which is skipped
# visibly without them.
# With --postgres (or AFFINITY_SETUP_POSTGRES=1; CI passes it): Debian's postgresql server binaries, for the store
# tests and scripts/cluster-demo.sh, which start a throwaway server of their own (no system service is used).
# Idempotent: does nothing when they are present. Debian/Ubuntu (apt); on macOS Accelerate is used instead.
set -euo pipefail
if [ "$(uname)" = "Darwin" ]; then exit 0; fi
SPARK=""
POSTGRES=""
if [ "${AFFINITY_SETUP_POSTGRES:-0}" = "1" ]; then POSTGRES=1; fi
for arg in "$@"; do
    case "$arg" in
        --spark) SPARK=1 ;;
        --postgres) POSTGRES=1 ;;
        *) echo "setup: unknown option $arg (known: --spark, --postgres)" >&2; exit 2 ;;
    esac
done
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
# apt waits up to 5 minutes for another apt or dpkg to let go of its lock; a failure is retried (a mirror hiccup).
apt_get() {
    local attempt
    for attempt in 1 2 3; do
        if DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 -qq "$@"; then return 0; fi
        echo "setup: apt-get $* failed (attempt $attempt); retrying" >&2
        sleep $((attempt * 10))
    done
    return 1
}
UPDATED=""
update_once() { [ -n "$UPDATED" ] || { apt_get update && UPDATED=1; }; }
if ! pkg-config --exists openblas 2>/dev/null; then
    echo "setup: installing libopenblas-dev and pkg-config (apt)" >&2
    update_once
    apt_get install -y libopenblas-dev pkg-config >/dev/null
fi
# Optional: a failure here must not fail setup.
if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (apt, best effort)" >&2
    { update_once && apt_get install -y --no-install-recommends chromium >/dev/null; } \
        || echo "setup: chromium unavailable: the report browser test will be skipped" >&2
fi
if [ -n "$SPARK" ]; then
    if ! command -v java >/dev/null 2>&1; then
        echo "setup: installing openjdk-17-jre-headless (apt)" >&2
        update_once
        apt_get install -y --no-install-recommends openjdk-17-jre-headless >/dev/null
    fi
    VENV="${AFFINITY_SPARK_VENV:-$HOME/.cache/affinity-spark/venv}"
    if ! "$VENV/bin/python" -c "import pyspark" 2>/dev/null; then
        echo "setup: installing pyspark into $VENV (pip)" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check pyspark
    fi
fi
# PostgreSQL's server binaries, for the store tests that start a throwaway server (skipped visibly without them).
if [ -n "$POSTGRES" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "setup: installing postgresql (apt)" >&2
    { update_once && apt_get install -y --no-install-recommends postgresql >/dev/null; } \
        || echo "setup: postgresql unavailable: the PostgreSQL store tests will be skipped" >&2
fi
