#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, meson option `fuzz`) and runs each on a copy of its seed corpus
# (fuzz/corpus/<target>/) for SECONDS or RUNS executions, whichever comes first; then prints, per target,
# executions, exec/s, coverage and findings.
#
#   tools/fuzz.sh [SECONDS_PER_TARGET] [BUILD_DIR]    (defaults: 60, build-fuzz; set up on first use)
#   tools/fuzz.sh --seeds [BUILD_DIR]                 (rewrites fuzz/corpus with fuzz_make_seeds)
#
# Environment: FUZZ_TARGETS (names, default all built), RUNS (default 1000000; 0 = no limit),
# FUZZ_ARGS (more libFuzzer flags: "-fork=1 -ignore_crashes=1" keeps going after a crash
# and keeps every crash as a finding). Findings (crash-*, leak-*, timeout-*, oom-*) are kept in
# BUILD_DIR/fuzz-work/<target>/artifacts/ and the script exits 1 if there is any; the run's log is
# BUILD_DIR/fuzz-work/<target>/log. Reproduce one with: BUILD_DIR/fuzz/<target> FILE
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seeds_only=0
if [ "${1:-}" = "--seeds" ]; then seeds_only=1; shift; seconds=0; else seconds="${1:-60}"; shift || true; fi
build="${1:-$root/build-fuzz}"
runs="${RUNS:-1000000}"

if [ ! -f "$build/build.ninja" ]; then
  echo "fuzz: setting up $build (clang-14, -Dfuzz=enabled, ASan + UBSan)" >&2
  CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}" meson setup "$build" "$root" -Dfuzz=enabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized -Dbenchmarks=disabled \
    -Dtests=disabled >&2
fi

if [ "$seeds_only" = 1 ]; then
  ninja -C "$build" fuzz/fuzz_make_seeds >&2
  ASAN_OPTIONS=detect_leaks=0 "$build/fuzz/fuzz_make_seeds" "$root/fuzz/corpus"
  exit 0
fi

ninja -C "$build" fuzz >&2

# Longest input per target (bytes): a few times the largest seed, small enough to keep runs fast.
declare -A max_len=([fuzz_model_file]=65536 [fuzz_checkpoint]=262144 [fuzz_idx]=16384 [fuzz_cifar]=16384
                    [fuzz_image_folder]=16384 [fuzz_frame_convert]=8192)
targets="${FUZZ_TARGETS:-fuzz_model_file fuzz_idx fuzz_cifar fuzz_image_folder fuzz_checkpoint fuzz_frame_convert}"

# Sanitizer reports abort (a finding); the registry is private and empty (the frame target needs no plugin).
export ASAN_OPTIONS="abort_on_error=1:detect_odr_violation=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$root/fuzz/lsan.supp:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export GST_PLUGIN_SYSTEM_PATH_1_0="" GST_PLUGIN_PATH_1_0="" GST_REGISTRY_FORK=no

work="$build/fuzz-work"
mkdir -p "$work"
rows=()
total_findings=0
for target in $targets; do
  exe="$build/fuzz/$target"
  if [ ! -x "$exe" ]; then
    echo "fuzz: $target not built (its dependency is missing), skipped" >&2
    continue
  fi
  dir="$work/$target"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$root/fuzz/corpus/$target/"* "$dir/corpus/"
  export GST_REGISTRY_1_0="$dir/registry.bin"
  echo "fuzz: $target for ${seconds}s or $runs runs" >&2
  start=$(date +%s)
  set +e
  TMPDIR="$dir" "$exe" "$dir/corpus" -max_total_time="$seconds" -runs="$runs" -rss_limit_mb=2048 \
    -max_len="${max_len[$target]:-65536}" -timeout=30 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    ${FUZZ_ARGS:-} >"$dir/log" 2>&1
  rc=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$dir/log" | grep ' cov: ' | tail -1 || true)
  # -fork mode prints no final stats: its status lines start with the total executions ("#N: cov: ...").
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
  [ -n "$rate" ] || { [ "$elapsed" -gt 0 ] && [ -n "$execs" ] && rate=$((execs / elapsed)); } || true
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(sed -n 's/.* corp: \([0-9]*\(\/[0-9a-zA-Z]*\)\{0,1\}\).*/\1/p' <<<"$last")
  findings=$(find "$dir/artifacts" -type f | wc -l)
  if [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; then findings=1; fi
  total_findings=$((total_findings + findings))
  what="none"
  if [ "$findings" -gt 0 ]; then
    what="$findings ($(ls "$dir/artifacts" | tr '\n' ' ')rc $rc; see $dir/log)"
  fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$target" "${execs:-?}" "$elapsed" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corpus:-?}" "${rss:-?}" "$what" >"$dir/row"
  rows+=("$dir/row")
done
printf '| target | executions | time (s) | exec/s | coverage (edges) | features | corpus | peak RSS (MB) | findings |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---|\n'
[ ${#rows[@]} -eq 0 ] || cat "${rows[@]}"
[ "$total_findings" -eq 0 ]
