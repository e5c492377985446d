#!/usr/bin/env bash
# Classify a video with overlay: every frame of the mixed clip (Fashion-MNIST frames and natural-video
# frames) gets its label, probability and an energy bar drawn on it (red when out of distribution);
# the result is encoded to H.264 MP4. SINK=autovideosink shows it on screen instead.
# Usage: pipelines/classify-clip.sh [OUT.mp4] [CLIP]   (MODEL=..., FRAMES=... to override)
set -euo pipefail
source "$(dirname "$0")/common.sh"
out="${1:-classified.mp4}"
ensure_clips
clip="${2:-$CLIPS/mixed.avi}"
if [ -n "${SINK:-}" ]; then
  sink="videoconvert ! $SINK"
else
  sink="videoconvert ! x264enc speed-preset=veryfast tune=zerolatency ! mp4mux ! filesink location=$out"
fi
gst-launch-1.0 filesrc location="$clip" ! decodebin ! videoconvert \
  ! identity eos-after="$FRAMES" \
  ! cffclassify model="$MODEL" overlay=true \
  ! $sink
[ -n "${SINK:-}" ] || echo "wrote $out"
