#!/usr/bin/env bash
# OOD alarm on a live-like mixed source: a live test pattern with the Fashion-MNIST clip composited
# on top. While the clip plays, frames look like the training data; when it runs out, only the live
# pattern is left and cffclassify posts an element message for every out-of-distribution frame.
# gst-launch prints the messages (-m); an application would watch the bus for "cffclassify".
# Usage: pipelines/ood-alarm-mixed.sh   (MODEL=..., FRAMES=... live frames to run)
set -euo pipefail
source "$(dirname "$0")/common.sh"
ensure_clips
half=$(( (FRAMES + 1) / 2 ))
gst-launch-1.0 -m compositor name=mix background=black latency=2000000000 \
  ! video/x-raw,width=224,height=224 \
  ! cffclassify model="$MODEL" message=ood \
  ! fakesink sync=true \
  videotestsrc is-live=true pattern=smpte num-buffers="$FRAMES" \
  ! video/x-raw,width=224,height=224,framerate=10/1 ! mix.sink_0 \
  filesrc location="$CLIPS/fashion.avi" ! decodebin ! videoconvert ! videoscale \
  ! identity eos-after="$half" ! video/x-raw,width=224,height=224 ! mix.sink_1
