#!/bin/bash
# Soak (issue 19): `videotestsrc ! cffclassify` and `cffgenerate ! cffclassify`, MINUTES each (default 10),
# one after the other, in cff-soak (tools/soak.cpp): VmRSS sampled every 5 s and printed as a series, the
# growth measured from the end of the warm-up (the first minute; a fifth of the run when shorter than
# 5 minutes) to the end, and every frame counted at the source and at an appsink, whose timestamps must
# step by exactly one frame duration. Fails (exit 1) if a pipeline grows by 2% or more, loses, duplicates
# or misstamps a frame, or posts an error or warning; GLib criticals abort it (G_DEBUG=fatal-criticals).
#
#   tools/soak.sh [MINUTES] [BUILD_DIR]      (default 10 minutes, build dir build)
#
# Environment: CFF_SOAK_MODEL (default models/fashion-mnist-cff.cff), SOAK_EVERY (seconds between
# samples, 5), SOAK_MAX_GROWTH (percent, 2), SOAK_WARMUP (seconds; overrides the default above).
# Both sources are live (paced by the clock): videotestsrc at 30 frames/s, cffgenerate (2 sampler
# steps) at 10 frames/s, so a soak measures steady operation rather than a CPU race.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
minutes="${1:-10}"
build="${2:-$root/build}"
if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: tools/soak.sh [MINUTES] [BUILD_DIR]" >&2
  exit 2
fi
soak="$build/tools/cff-soak"
if [ ! -x "$soak" ] || [ ! -f "$build/gst-plugin/libgstcff.so" ]; then
  echo "soak: $soak or the plugin is not built (ninja -C $build tools/cff-soak gst-plugin/libgstcff.so)" >&2
  exit 2
fi
model="${CFF_SOAK_MODEL:-$root/models/fashion-mnist-cff.cff}"
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
warmup="${SOAK_WARMUP:-$(awk -v s="$seconds" 'BEGIN { printf "%d", (s >= 300 ? 60 : s / 5) }')}"
every="${SOAK_EVERY:-5}"
growth="${SOAK_MAX_GROWTH:-2}"

# The build's plugin and the stock ones (videotestsrc, app, coreelements) from the system folder, with a
# private registry, as the test suite does.
export GST_PLUGIN_SYSTEM_PATH_1_0=
export GST_PLUGIN_PATH_1_0="$build/gst-plugin:$(pkg-config --variable=pluginsdir gstreamer-1.0)"
export GST_REGISTRY_1_0="$build/soak-registry.bin"
export G_DEBUG=fatal-criticals

declare -A pipelines=(
  [videotestsrc]="videotestsrc name=src is-live=true pattern=ball ! video/x-raw,format=GRAY8,width=28,height=28,framerate=30/1 ! cffclassify model=\"$model\" device=cpu threads=1 ! appsink name=sink sync=false"
  [cffgenerate]="cffgenerate name=src is-live=true steps=2 model=\"$model\" device=cpu threads=1 ! video/x-raw,framerate=10/1 ! cffclassify model=\"$model\" device=cpu threads=1 ! appsink name=sink sync=false"
)
status=0
summary=()
for name in videotestsrc cffgenerate; do
  echo "=== soak $name: $minutes min"
  log="$(mktemp)"
  start=$(date +%s)
  if "$soak" --seconds "$seconds" --every "$every" --warmup "$warmup" --max-growth "$growth" \
      "${pipelines[$name]}" | tee "$log"; then
    result=PASS
  else
    result=FAIL
    status=1
  fi
  frames="$(sed -n 's/^soak: \(.* frames made .*\)/\1/p' "$log")"
  rss="$(sed -n 's/^soak: \(RSS .*\)/\1/p' "$log")"
  summary+=("$name: $result in $(( $(date +%s) - start )) s; ${frames:-no frame count}; ${rss:-no RSS figures}")
  rm -f "$log"
done
echo "=== soak summary"
printf '%s\n' "${summary[@]}"
exit "$status"
