#!/usr/bin/env bash
# Every performance comparison of the project in one run, with the same LibTorch threads for all:
#   1. cffclassify against the bare libcff forward pass it wraps, and the model's default OOD score against
#      the energy alone (bench-classify; 28x28 GRAY8, 320x240 RGB)
#   2. cffclassify against its Python peer element pycffclassify (python_peer.sh; skipped without gst-python)
#   3. training cost of the CFF objective against cross-entropy (bench-train-throughput; force fractions 1, 0.5)
#   4. cffgenerate frames/s at steps 10, 20, 50 and batch 1, 16 (bench-element-fps)
#   5. cffdenoise frames/s on 640x480 GRAY8 and I420, steps 1 and 5 (bench-element-fps, videotestsrc snow)
# Element frame rates are steady-state figures: bench-element-fps times from the end of the warm-up
# buffers (model loading, negotiation, first calls) to the last buffer. Ratios are measured within one
# process with interleaved rounds, so background load hits both sides alike; absolute figures depend on it.
# Prints one line per part, then a summary of all ratios against their targets and the frame rates, and
# writes bench-results.json and bench-results.md (plus each tool's log under logs/) into the output folder.
#
# Usage: tools/bench/run_all.sh [--threads 1] [--quick] [--model models/fashion-mnist-cff.cff] [--out DIR | DIR]
#   --quick: a few frames and rounds per part and 160x120 frames for cffdenoise (a smoke run for the tests;
#            its figures are not worth quoting).
# Environment: CFF_BUILD_ROOT (build folder, default <repo>/build) for the benchmarks and the plugin.
# Exit status: 0 when every part ran (a skipped part counts as run), 1 when one failed, 2 on bad usage.
# Targets are reported, not enforced: missing one does not change the exit status.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${CFF_BUILD_ROOT:-$root/build}"

threads=1
quick=false
model="$root/models/fashion-mnist-cff.cff"
out=""
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="${2:?--threads needs a value}"; shift 2 ;;
    --quick) quick=true; shift ;;
    --model) model="${2:?--model needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run_all: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
[[ "$threads" =~ ^[0-9]+$ ]] || { echo "run_all: --threads expects a number, got '$threads'" >&2; exit 2; }
[ -r "$model" ] || { echo "run_all: model $model not found" >&2; exit 2; }
model="$(cd "$(dirname "$model")" && pwd)/$(basename "$model")"
out="${out:-$build/bench}"

bench_classify="$build/tools/bench-classify"
bench_train="$build/tools/bench-train-throughput"
bench_fps="$build/tools/bench-element-fps"
for tool in "$bench_classify" "$bench_train" "$bench_fps" "$build/gst-plugin/libgstcff.so"; do
  if [ ! -e "$tool" ]; then
    echo "run_all: $tool not found: build it (ninja -C $build ${tool#"$build/"}) or set CFF_BUILD_ROOT" >&2
    exit 2
  fi
done

mkdir -p "$out/logs" || exit 2
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/cff-bench.XXXXXX")" || exit 2
trap 'rm -rf "$work"' EXIT
# The freshly built plugin, never an installed one, with a registry of this run's own.
export GST_PLUGIN_PATH_1_0="$build/gst-plugin"
export GST_REGISTRY_1_0="$work/registry.bin"

# Sizes of each part: the full run, or the smoke run of the tests.
if $quick; then
  classify_args=(--frames 8 --rounds 1); peer_args=(--frames 20 --rounds 1)
  train_args=(--batch 32 --rounds 1 --steps 2)
  generate_samples=2; generate_batches=1; denoise_size=(160 120); denoise_frames=1
else
  classify_args=(--frames 200 --rounds 5); peer_args=(--frames 200 --rounds 3)
  train_args=(--batch 128 --rounds 3 --steps 10)
  generate_samples=16; generate_batches=3; denoise_size=(640 480); denoise_frames=2
fi

# ---- results, kept as JSON fragments and summary rows ----
failed=0
summary_rows=()   # "part|figure|value|target|verdict"
part_json=()      # '"name": {...}' fragments for bench-results.json
started_all=$(date +%s)

json_string() {  # a JSON string literal of $1
  local s="${1//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\t'/ }"
  printf '"%s"' "${s//$'\n'/ }"
}
number_or_null() { [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] && printf '%s' "$1" || printf 'null'; }

# verdict VALUE OP TARGET: "met" / "missed" (OP is >= or <=), or "-" without a value
verdict() {
  [ -n "$1" ] || { echo "-"; return; }
  if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { exit !((op == ">=") ? v >= t : v <= t) }'; then echo met; else echo missed; fi
}
add_row() { summary_rows+=("$1|$2|$3|$4|$5"); }

# Runs a tool with its output in logs/NAME.log; returns its exit status.
run_logged() {
  local name="$1"; shift
  "$@" >"$out/logs/$name.log" 2>&1
}
# The first number after PATTERN (an extended regex) in a log.
figure() { grep -Eo -- "$2 *[-0-9.]+" "$out/logs/$1.log" | head -n 1 | grep -Eo -- '[-0-9.]+$'; }
# Seconds since $1 (a date +%s stamp).
since() { echo $(( $(date +%s) - $1 )); }
part_failed() {
  echo "[$1] FAILED (exit status $2; see $out/logs/$3.log):" >&2
  tail -n 5 "$out/logs/$3.log" | sed 's/^/    /' >&2
  failed=1
}

# ---- 1. cffclassify against the bare forward pass ----
classify_json=()
for config in "28x28 GRAY8" "320x240 RGB"; do
  read -r size format <<<"$config"
  name="classify-$size-$format"
  t0=$(date +%s)
  if run_logged "$name" "$bench_classify" --model "$model" --device cpu --threads "$threads" --size "$size" \
       --format "$format" "${classify_args[@]}" --json "$work/$name.json"; then
    ratio=$(figure "$name" 'ratio element/bare'); element=$(figure "$name" '^element .*fakesink:')
    bare=$(figure "$name" '^bare .*batch 1:')
    echo "[1 classify] $size $format: element $element frames/s, bare $bare frames/s, ratio element/bare $ratio ($(since "$t0") s)"
    add_row "cffclassify / bare forward, $size $format" "fps ratio" "$ratio" ">= 0.9" "$(verdict "$ratio" '>=' 0.9)"
    cost=$(figure "$name" 'energy only')
    add_row "cffclassify default OOD score / energy only, $size $format" "time ratio" "$cost" "<= 1.3" \
      "$(verdict "$cost" '<=' 1.3)"
    add_row "cffclassify, $size $format" "frames/s" "$element" "" "-"
    classify_json+=("$(json_string "$size $format"): $(cat "$work/$name.json")")
  else
    part_failed "1 classify $size $format" $? "$name"
    add_row "cffclassify / bare forward, $size $format" "fps ratio" "" ">= 0.9" "failed"
  fi
done
part_json+=("\"classify_element\": {$(IFS=,; echo "${classify_json[*]}")}")

# ---- 2. cffclassify against the Python peer element ----
t0=$(date +%s)
BENCH_CLASSIFY="$bench_classify" GST_REGISTRY_1_0="$work/registry-python-peer.bin" \
  run_logged python-peer bash "$here/python_peer.sh" --model "$model" --device cpu --threads "$threads" \
  "${peer_args[@]}" --json "$work/python-peer.json"
status=$?
if [ $status -eq 0 ]; then
  ratio=$(figure python-peer 'ratio cffclassify/pycffclassify'); peer=$(figure python-peer '^peer .*fakesink:')
  element=$(figure python-peer '^element .*fakesink:')
  echo "[2 python peer] cffclassify $element frames/s, pycffclassify $peer frames/s, ratio C++/Python $ratio ($(since "$t0") s)"
  add_row "cffclassify / pycffclassify (Python peer)" "fps ratio" "$ratio" ">= 2" "$(verdict "$ratio" '>=' 2)"
  part_json+=("\"python_peer\": $(cat "$work/python-peer.json")")
elif [ $status -eq 77 ]; then
  reason=$(grep -m1 'skipped' "$out/logs/python-peer.log")
  echo "[2 python peer] skipped: ${reason:-gst-python or the system python3-torch missing}"
  add_row "cffclassify / pycffclassify (Python peer)" "fps ratio" "" ">= 2" "skipped"
  part_json+=("\"python_peer\": {\"skipped\": $(json_string "${reason:-skipped}")}")
else
  part_failed "2 python peer" $status python-peer
  add_row "cffclassify / pycffclassify (Python peer)" "fps ratio" "" ">= 2" "failed"
fi

# ---- 3. training: CFF objective against cross-entropy ----
t0=$(date +%s)
if run_logged train "$bench_train" --threads "$threads" "${train_args[@]}" --json "$work/train.json"; then
  ce=$(figure train 'ce +training:')
  line="[3 training] ce $ce img/s"
  for fraction in 1.00 0.50; do
    cff=$(figure train "force fraction $fraction:"); ratio=$(figure train "force fraction $fraction:.*per image")
    line+=", cff (force fraction $fraction) $cff img/s, cost cff/ce $ratio"
    add_row "training cost CFF / CE per image, force fraction $fraction" "time ratio" "$ratio" "<= 2.5" \
      "$(verdict "$ratio" '<=' 2.5)"
  done
  echo "$line ($(since "$t0") s)"
  add_row "training, cross-entropy" "img/s" "$ce" "" "-"
  part_json+=("\"train_throughput\": $(cat "$work/train.json")")
else
  part_failed "3 training" $? train
  add_row "training cost CFF / CE per image" "time ratio" "" "<= 2.5" "failed"
fi

# Steady-state frames/s of a pipeline (bench-element-fps) into logs/NAME.log and $work/NAME.json.
element_fps() {  # NAME WARMUP DESCRIPTION
  run_logged "$1" "$bench_fps" --warmup "$2" --json "$work/$1.json" "$3"
}

# Times one element pipeline and records it: a summary row, a "LABEL: fps;" piece of $line, and in
# $record_json an object with the given JSON fields plus fps and the raw run. Returns 1 (after
# reporting the failure and a "failed" row) when the run fails.
record_fps() {  # NAME WARMUP DESCRIPTION ROW LABEL PART JSON_FIELDS
  local name=$1 warmup=$2 description=$3 row=$4 label=$5 part=$6 fields=$7
  if element_fps "$name" "$warmup" "$description"; then
    fps=$(figure "$name" '^fps')
    line+=" $label: $fps;"
    add_row "$row" "frames/s" "$fps" "" "-"
    record_json="{$fields, \"fps\": $(number_or_null "$fps"), \"run\": $(cat "$work/$name.json")}"
  else
    part_failed "$part" $? "$name"
    add_row "$row" "frames/s" "" "" "failed"
    return 1
  fi
}

# ---- 4. cffgenerate ----
# Timed: generate_samples samples at batch 1, generate_batches batches at batch 16. num-buffers and the
# warm-up are whole batches, so the timed span is whole model calls.
t0=$(date +%s)
generate_json=()
line="[4 generate] frames/s:"
for batch in 1 16; do
  for steps in 10 20 50; do
    name="generate-steps$steps-batch$batch"
    if [ "$batch" -eq 1 ]; then timed=$generate_samples; else timed=$(( batch * generate_batches )); fi
    buffers=$(( batch + timed ))
    record_fps "$name" "$batch" \
      "cffgenerate model=\"$model\" device=cpu threads=$threads steps=$steps batch=$batch num-buffers=$buffers ! fakesink name=sink" \
      "cffgenerate, steps $steps, batch $batch" "steps $steps batch $batch" "4 generate steps $steps batch $batch" \
      "\"steps\": $steps, \"batch\": $batch" && generate_json+=("$record_json")
  done
done
echo "${line%;} ($(since "$t0") s)"
part_json+=("\"generate\": [$(IFS=,; echo "${generate_json[*]}")]")

# ---- 5. cffdenoise ----
# Snow is noise in every pixel; sigma=0 (the default) makes the element estimate it on every frame.
t0=$(date +%s)
denoise_json=()
width=${denoise_size[0]}; height=${denoise_size[1]}
line="[5 denoise] ${width}x${height} frames/s:"
for config in "GRAY8 1" "I420 1" "GRAY8 5"; do
  read -r format steps <<<"$config"
  name="denoise-$format-steps$steps"
  record_fps "$name" 1 \
    "videotestsrc pattern=snow num-buffers=$(( denoise_frames + 1 )) ! video/x-raw,format=$format,width=$width,height=$height ! cffdenoise model=\"$model\" device=cpu threads=$threads steps=$steps ! fakesink name=sink" \
    "cffdenoise, ${width}x${height} $format, steps $steps" "$format steps $steps" "5 denoise $format steps $steps" \
    "\"format\": \"$format\", \"width\": $width, \"height\": $height, \"steps\": $steps" && denoise_json+=("$record_json")
done
echo "${line%;} ($(since "$t0") s)"
part_json+=("\"denoise\": [$(IFS=,; echo "${denoise_json[*]}")]")

# ---- summary, bench-results.json, bench-results.md ----
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if git -C "$root" diff --quiet HEAD -- 2>/dev/null; then dirty=false; else dirty=true; fi
[ "$commit" = unknown ] && dirty=null
gst_version=$(gst-inspect-1.0 --version 2>/dev/null | sed -n 's/^GStreamer //p' | head -n 1)
date_now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r load1 load5 load15 _ < /proc/loadavg
wall=$(since "$started_all")
threads_text="$threads"; [ "$threads" = 0 ] && threads_text="0 (one per core)"

echo
echo "Summary ($(nproc) cores, $cpu_model; LibTorch threads $threads_text; load average $load1; $wall s)"
printf '%-58s %-11s %10s %-7s %s\n' "comparison" "figure" "value" "target" "verdict"
for row in "${summary_rows[@]}"; do
  IFS='|' read -r what kind value target result <<<"$row"
  printf '%-58s %-11s %10s %-7s %s\n' "$what" "$kind" "${value:--}" "${target:--}" "$result"
done

rows_json=()
for row in "${summary_rows[@]}"; do
  IFS='|' read -r what kind value target result <<<"$row"
  rows_json+=("    {\"comparison\": $(json_string "$what"), \"figure\": $(json_string "$kind"), \"value\": $(number_or_null "$value"), \"target\": $(json_string "$target"), \"verdict\": $(json_string "$result")}")
done
{
  echo "{"
  echo "  \"machine\": {\"nproc\": $(nproc), \"cpu_model\": $(json_string "$cpu_model"), \"load_average\": [$load1, $load5, $load15], \"gstreamer\": $(json_string "$gst_version")},"
  echo "  \"threads\": $threads, \"quick\": $quick, \"date\": \"$date_now\", \"git_commit\": $(json_string "$commit"), \"git_dirty\": $dirty,"
  echo "  \"model\": $(json_string "${model#"$root/"}"), \"wall_seconds\": $wall,"
  echo "  \"summary\": ["
  (IFS=$'\n'; echo "${rows_json[*]}" | sed '$!s/$/,/')
  echo "  ],"
  echo "  \"parts\": {$(IFS=,; echo "${part_json[*]}")}"
  echo "}"
} > "$out/bench-results.json.partial" && mv "$out/bench-results.json.partial" "$out/bench-results.json"

{
  echo "# cff benchmarks"
  echo
  echo "Run of \`tools/bench/run_all.sh$($quick && echo ' --quick') --threads $threads\` on $date_now, commit $commit$([ "$dirty" = true ] && echo ' (with local changes)'):"
  echo "$(nproc) cores, $cpu_model; LibTorch threads $threads_text; load average at the end $load1 $load5 $load15;"
  echo "GStreamer $gst_version; model \`${model#"$root/"}\`; $wall s in all."
  echo "Ratios are measured within one process with interleaved rounds; frame rates are steady state"
  echo "(model loading and the first frames left out) and move with the machine's load."
  $quick && echo && echo "A --quick run: few frames, small denoise frames; its figures are not worth quoting."
  echo
  echo "| comparison | figure | value | target | verdict |"
  echo "|---|---|---:|---|---|"
  for row in "${summary_rows[@]}"; do
    IFS='|' read -r what kind value target result <<<"$row"
    echo "| $what | $kind | ${value:--} | ${target:--} | $result |"
  done
  echo
  echo "Raw figures: \`bench-results.json\`; each tool's output: \`logs/\`."
} > "$out/bench-results.md"

echo
echo "wrote $out/bench-results.json and $out/bench-results.md"
exit $failed
