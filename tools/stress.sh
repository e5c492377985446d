#!/bin/bash
# State and threading stress (issue 19): the three elements' NULL -> PLAYING -> NULL cycling tests with
# CFF_STATE_CYCLES cycles each (default 1000), then the threading tests (Stress.*: properties set from
# several threads while PLAYING, two cffclassify sharing one model, two pipelines in two threads), all
# under G_DEBUG=fatal-criticals (a GLib critical aborts the run). The cycling tests print VmRSS every 100
# cycles (CFF_STATE_RSS=1); memory counts as flat when the growth from cycle 100 (after the warm-up:
# model loaded, thread pools made) to the last cycle is under STRESS_MAX_GROWTH percent (default 2).
#
#   tools/stress.sh [BUILD_DIR]      (default build)
#
# Environment: CFF_STATE_CYCLES (1000), STRESS_MAX_GROWTH (2), CFF_GST_TEST_MODEL (a model file for the
# tests; default models/fashion-mnist-cff.cff, else the tests train a tiny one).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
test_gst="$build/tests/gst/test_gst"
if [ ! -x "$test_gst" ] || [ ! -f "$build/gst-plugin/libgstcff.so" ]; then
  echo "stress: $test_gst or the plugin is not built (ninja -C $build tests/gst/test_gst gst-plugin/libgstcff.so)" >&2
  exit 2
fi

export CFF_STATE_CYCLES="${CFF_STATE_CYCLES:-1000}"
export CFF_STATE_RSS=1
export G_DEBUG=fatal-criticals
if [ -z "${CFF_GST_TEST_MODEL:-}" ] && [ -f "$root/models/fashion-mnist-cff.cff" ]; then
  export CFF_GST_TEST_MODEL="$root/models/fashion-mnist-cff.cff"
fi
max_growth="${STRESS_MAX_GROWTH:-2}"
# As the meson test environment: the build's plugin, a private registry, no system plugins (the tests load
# the stock ones they need by file).
export GST_PLUGIN_PATH_1_0="$build/gst-plugin"
export GST_PLUGIN_SYSTEM_PATH_1_0=
export GST_REGISTRY_1_0="$build/stress-registry.bin"
export CFF_SOURCE_ROOT="$root"
export CFF_BUILD_ROOT="$build"

status=0
summary=()
run() {  # run NAME GTEST_FILTER
  local name="$1" filter="$2" log start seconds result
  log="$(mktemp)"
  start=$(date +%s)
  echo "=== $name ($filter)"
  if "$test_gst" --gtest_filter="$filter" 2>&1 | tee "$log"; then result=PASS; else result=FAIL; status=1; fi
  seconds=$(( $(date +%s) - start ))
  local rss
  rss="$(sed -n 's/^\[ rss      \] cycle \([0-9]*\): VmRSS \([0-9]*\) kB$/\1 \2/p' "$log")"
  if [ -n "$rss" ]; then
    echo "--- $name: VmRSS (kB) by cycle"
    echo "$rss" | awk '{ printf "  cycle %5d  %8d kB\n", $1, $2 }'
    local line
    line="$(echo "$rss" | awk -v limit="$max_growth" '
      { cycle[NR] = $1; kb[NR] = $2 }
      END {
        base = 1; for (i = 1; i <= NR; ++i) if (cycle[i] >= 100) { base = i; break }
        growth = 100.0 * (kb[NR] - kb[base]) / kb[base]
        printf "RSS %d kB at cycle 0, %d kB at cycle %d, %d kB at cycle %d: growth %+.2f%% after the warm-up (limit %s%%)%s",
               kb[1], kb[base], cycle[base], kb[NR], cycle[NR], growth, limit, (growth >= limit ? " TOO MUCH" : "")
      }')"
    if [[ "$line" == *"TOO MUCH"* ]]; then result=FAIL; status=1; fi
    summary+=("$name: $result in $seconds s; $line")
  else
    summary+=("$name: $result in $seconds s")
  fi
  rm -f "$log"
}

run "cffclassify cycling x$CFF_STATE_CYCLES" 'CffClassify.StateCycling*'
run "cffdenoise cycling x$CFF_STATE_CYCLES" 'CffDenoise.StateCycling*'
run "cffgenerate cycling x$CFF_STATE_CYCLES" 'CffGenerate.StateCycling*'
run "threading" 'Stress.*'
echo "=== stress summary (G_DEBUG=$G_DEBUG)"
printf '%s\n' "${summary[@]}"
exit "$status"
