#!/usr/bin/env bash
# Installs what Affinity needs beyond the Swift toolchain: OpenBLAS (with its LAPACK) and pkg-config; and, best
# effort, chromium for the headless-browser test of `affinity report` (skipped visibly without it).
# Idempotent: does nothing when they are present. Debian/Ubuntu (apt); on macOS Accelerate is used instead.
set -euo pipefail
if [ "$(uname)" = "Darwin" ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
UPDATED=""
if ! pkg-config --exists openblas 2>/dev/null; then
    echo "setup: installing libopenblas-dev and pkg-config (apt)" >&2
    $SUDO apt-get update -qq
    UPDATED=1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
fi
# Optional: a failure here must not fail setup.
if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (apt, best effort)" >&2
    { [ -n "$UPDATED" ] || $SUDO apt-get update -qq; } \
        && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || echo "setup: chromium unavailable: the report browser test will be skipped" >&2
fi
# Optional, with AFFINITY_SETUP_POSTGRES=1 (CI sets it): PostgreSQL's server binaries, for the store tests that
# start a throwaway server (skipped visibly without them). Waits for, then retries on, a held apt lock.
if [ "${AFFINITY_SETUP_POSTGRES:-0}" = "1" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "setup: installing postgresql (apt)" >&2
    for attempt in 1 2 3 4 5; do
        if $SUDO apt-get -o DPkg::Lock::Timeout=120 update -qq \
            && DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends postgresql >/dev/null; then
            break
        fi
        echo "setup: apt failed (attempt $attempt), retrying in 15 s" >&2
        sleep 15
    done
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo "setup: postgresql unavailable: the PostgreSQL store tests will be skipped" >&2
fi
