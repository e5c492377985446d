#!/usr/bin/env bash
# Generate a class-conditional video: cffgenerate walks the classes (label=cycle), each frame made by
# centripetal steps from fresh noise; scaled up and encoded to H.264 MP4.
# Usage: pipelines/generate-mp4.sh [OUT.mp4]   (MODEL=..., FRAMES=..., STEPS=... to override)
set -euo pipefail
source "$(dirname "$0")/common.sh"
out="${1:-generated.mp4}"
gst-launch-1.0 cffgenerate model="$MODEL" label=cycle steps="${STEPS:-10}" num-buffers="$FRAMES" \
  ! videoconvert ! videoscale method=nearest-neighbour ! video/x-raw,width=224,height=224,format=I420 \
  ! x264enc speed-preset=veryfast tune=zerolatency ! mp4mux ! filesink location="$out"
echo "wrote $out"
