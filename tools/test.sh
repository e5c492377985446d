#!/usr/bin/env bash
# README command 2 (and .ci/run): install, build, and run every test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh || exit 1
meson test -C build --print-errorlogs "$@"
status=$?
python3 tools/test_summary.py build/meson-logs/testlog.json || status=1
exit $status
