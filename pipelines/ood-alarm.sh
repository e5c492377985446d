#!/usr/bin/env bash
# OOD alarm on a live source: a live test pattern (nothing like Fashion-MNIST) goes through cffclassify,
# which posts a bus message for every out-of-distribution frame; gst-launch prints them (-m).
# Usage: pipelines/ood-alarm.sh   (MODEL=..., FRAMES=... to override)
set -euo pipefail
source "$(dirname "$0")/common.sh"
gst-launch-1.0 -m videotestsrc is-live=true pattern=ball num-buffers="$FRAMES" \
  ! video/x-raw,format=RGB,width=320,height=240,framerate=30/1 \
  ! cffclassify model="$MODEL" message=ood overlay=true \
  ! fakesink sync=true
