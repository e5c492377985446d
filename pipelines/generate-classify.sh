#!/usr/bin/env bash
# Generator -> classifier loop: cffclassify checks what cffgenerate made (label=cycle walks the classes)
# and posts every result on the bus.
# Usage: pipelines/generate-classify.sh   (MODEL=..., FRAMES=... to override)
set -euo pipefail
source "$(dirname "$0")/common.sh"
gst-launch-1.0 -m cffgenerate model="$MODEL" label=cycle num-buffers="$FRAMES" \
  ! cffclassify model="$MODEL" message=all \
  ! fakesink
