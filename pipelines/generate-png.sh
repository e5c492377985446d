#!/usr/bin/env bash
# Generates class-conditional frames (here: trousers, the default 10 centripetal steps with a corrector step each) and writes them as PNGs.
# Usage: pipelines/generate-png.sh [OUTPUT_DIR]   (LABEL=..., MODEL=..., FRAMES=... to override)
set -euo pipefail
source "$(dirname "$0")/common.sh"
out="${1:-generated}"
mkdir -p "$out"
gst-launch-1.0 cffgenerate model="$MODEL" label="${LABEL:-Trouser}" num-buffers="$FRAMES" \
  ! videoconvert ! videoscale ! video/x-raw,width=112,height=112 \
  ! pngenc ! multifilesink location="$out/gen_%03d.png"
echo "wrote $FRAMES frames to $out/"
