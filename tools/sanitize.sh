#!/bin/bash
# Builds everything with AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer and runs the test
# suite in that build; any memory error, undefined behaviour or leak fails it.
#
#   tools/sanitize.sh [BUILD_DIR] [MESON_TEST_ARGS...]    (default build-sanitize; set up on first use)
#
# Examples: the whole suite:  tools/sanitize.sh
#           the elements' state cycling, 1000 cycles each:
#             CFF_STATE_CYCLES=1000 CFF_GST_TEST_MODEL=models/fashion-mnist-cff.cff \
#               tools/sanitize.sh build-sanitize --suite gst --test-args='--gtest_filter=*StateCycling*'
#
# Environment: CFF_STATE_CYCLES (default 100), CFF_GST_TEST_MODEL (a model file for the state-cycling runs; unset,
# the element tests train their tiny model, which the whole suite needs: some tests check its own figures).
#
# LibTorch, GLib and GStreamer are not instrumented; tools/lsan.supp holds the leak reports of libraries that
# keep allocations for the life of the process (fontconfig's cache) and nothing of ours. The registry is
# scanned in-process (GST_REGISTRY_FORK=no): gst-plugin-scanner is not built with ASan and could not load the
# instrumented plugin. The pkgconfig test is left out: it compiles an uninstrumented program against the
# instrumented libcff, which only tests a build setup, not memory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-sanitize}"
shift || true

if [ ! -f "$build/build.ninja" ]; then
  echo "sanitize: setting up $build (b_sanitize=address,undefined)" >&2
  meson setup "$build" "$root" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized \
    -Dbenchmarks=disabled >&2
fi
ninja -C "$build" >&2

export CFF_STATE_CYCLES="${CFF_STATE_CYCLES:-100}"
export GST_REGISTRY_FORK=no
# Programs that are not instrumented (gst-launch-1.0, python3, bash) load the instrumented plugin or run
# instrumented tools: the sanitizer runtimes must come first in every process.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)${LD_PRELOAD:+ $LD_PRELOAD}"
# OpenCV's FireWire and gphoto2 camera backends enumerate USB devices (libusb, libgphoto2) when a video file is
# opened, and keep or leak what they found: cameras are not used here.
export OPENCV_VIDEOIO_PRIORITY_DC1394=0 OPENCV_VIDEOIO_PRIORITY_GPHOTO2=0
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tools/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
rm -f "$build/tests/registry.bin"

if [ $# -eq 0 ]; then
  all=$(meson test -C "$build" --no-rebuild --list 2>/dev/null | sed 's/^.* \/ //' | grep -v -x pkgconfig)
  status=0
  # The test scripts (pipelines, own images, sweep) run gst-launch-1.0, which is not instrumented: with the fast
  # unwinder a leak report from inside it stops at "g_malloc", so the slow unwinder runs there, which tells GLib's
  # own allocations made while a library loads (call_init, suppressed) from the plugin's.
  scripts='^(pipeline-.*|own-images|sweep)$'
  # shellcheck disable=SC2086
  meson test -C "$build" --no-rebuild --print-errorlogs --timeout-multiplier 6 $(echo "$all" | grep -v -E "$scripts") ||
    status=1
  # shellcheck disable=SC2086
  ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" meson test -C "$build" --no-rebuild --print-errorlogs \
    --timeout-multiplier 6 --logbase scripts $(echo "$all" | grep -E "$scripts") || status=1
  exit "$status"
fi
exec meson test -C "$build" --no-rebuild --print-errorlogs --timeout-multiplier 6 "$@"
