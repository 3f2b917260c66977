#!/usr/bin/env bash
# Builds the DocC documentation of the library targets AffinityCore, AffinityData, AffinityEval and
# AffinityModels (their doc comments and the catalogs in Sources/<Target>/<Target>.docc) with the
# swift-docc-plugin, treating every DocC warning as an error: exits non-zero on any warning.
#
#   scripts/docs.sh [OUTPUT_DIR]     # default .build/docs in the repository; writes OUTPUT_DIR/<Target>.doccarchive
#
# Uses its own scratch folder, .build-docc, so it does not collide with a `swift build` in .build.
# To browse one target locally: swift package --disable-sandbox preview-documentation --target AffinityModels
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.build/docs}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac   # relative to where the script was run from
cd "$root"
./scripts/setup.sh
mkdir -p "$out"
swift package --scratch-path .build-docc --allow-writing-to-directory "$out" \
    generate-documentation \
    --target AffinityCore --target AffinityData --target AffinityEval --target AffinityModels \
    --output-path "$out" --warnings-as-errors
