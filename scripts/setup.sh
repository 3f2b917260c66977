#!/usr/bin/env bash
# Installs what Affinity needs beyond the Swift toolchain: OpenBLAS (with its LAPACK) and pkg-config.
# Idempotent: does nothing when they are present. Debian/Ubuntu (apt); on macOS Accelerate is used instead.
set -euo pipefail
if [ "$(uname)" = "Darwin" ]; then exit 0; fi
if pkg-config --exists openblas 2>/dev/null; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "setup: installing libopenblas-dev and pkg-config (apt)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
