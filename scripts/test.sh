#!/usr/bin/env bash
# Installs what is needed and runs the whole test suite.
# The run is bounded (AFFINITY_TEST_TIME_LIMIT seconds, default 2700, build included; the suite itself takes about
# four minutes on two idle cores): a test that hangs fails the run with the names of the tests still running,
# instead of holding the machine until an outer timeout with nothing to show.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
limit="${AFFINITY_TEST_TIME_LIMIT:-2700}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
timeout --kill-after=20 "$limit" swift test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "test.sh: the tests did not finish within ${limit} s; started and never finished:" >&2
    awk '
        /^◇ Test / && !/^◇ Test (run|case) / { name = $0; sub(/^◇ Test /, "", name); sub(/ started\.$/, "", name); open[name] = 1 }
        /^(✔|✘) Test / && !/^(✔|✘) Test (run|case) / && / after [0-9.]+ seconds/ {
            name = $0; sub(/^(✔|✘) Test /, "", name); sub(/ (with [0-9]+ test cases? )?(passed|failed) after .*$/, "", name); delete open[name]
        }
        END { for (name in open) print "  " name }' "$log" >&2
fi
exit "$status"
