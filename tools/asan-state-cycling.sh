#!/bin/bash
# Runs the three elements' state-cycling tests (NULL -> PLAYING -> NULL, 100 cycles each by default)
# in an AddressSanitizer + LeakSanitizer build of the plugin and the GStreamer test binary, and fails on
# any memory error or leak.
#
#   tools/asan-state-cycling.sh [BUILD_DIR]      (default build-asan; set up on first use)
#
# Environment: CFF_STATE_CYCLES (default 100), CFF_GST_TEST_MODEL (a model file for the tests; default
# models/fashion-mnist-cff.cff, else the tests train a tiny one).
#
# The registry is scanned in-process (GST_REGISTRY_FORK=no): gst-plugin-scanner is not built with ASan
# and could not load the instrumented plugin. The meson test environment hides the system plugins, so
# only the plugins the pipelines need are loaded.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-asan}"

if [ ! -f "$build/build.ninja" ]; then
  echo "asan-state-cycling: setting up $build (b_sanitize=address)" >&2
  meson setup "$build" "$root" -Db_sanitize=address -Db_lundef=false -Dbuildtype=debugoptimized -Dbenchmarks=disabled >&2
fi
ninja -C "$build" tests/gst/test_gst gst-plugin/libgstcff.so >&2

export CFF_STATE_CYCLES="${CFF_STATE_CYCLES:-100}"
if [ -z "${CFF_GST_TEST_MODEL:-}" ] && [ -f "$root/models/fashion-mnist-cff.cff" ]; then
  export CFF_GST_TEST_MODEL="$root/models/fashion-mnist-cff.cff"
fi
export GST_REGISTRY_FORK=no
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
rm -f "$build/tests/registry.bin"

meson test -C "$build" --no-rebuild --suite gst --print-errorlogs --timeout-multiplier 4 \
  --test-args='--gtest_filter=*StateCycling*'
