#!/usr/bin/env bash
# Denoise a noisy video: Fashion-MNIST frames with Gaussian noise (sigma 25) go through cffdenoise,
# which estimates the noise level of each frame; input and output are written side by side as PNGs,
# and the denoised stream as H.264 MP4.
# x264enc runs with tune=zerolatency: its default look-ahead holds frames back, the other branches fill
# their queues meanwhile, and the tee would stall the pipeline.
# Usage: pipelines/denoise-clip.sh [OUTDIR]   (MODEL=..., FRAMES=... to override)
set -euo pipefail
source "$(dirname "$0")/common.sh"
out="${1:-denoised}"
mkdir -p "$out"
ensure_clips
gst-launch-1.0 filesrc location="$CLIPS/noisy.avi" ! decodebin ! videoconvert \
  ! identity eos-after="$FRAMES" ! video/x-raw,format=GRAY8 ! tee name=t \
  t. ! queue ! videoscale ! video/x-raw,width=112,height=112 ! pngenc ! multifilesink location="$out/noisy_%03d.png" \
  t. ! queue ! cffdenoise model="$MODEL" ! tee name=d \
  d. ! queue ! videoscale ! video/x-raw,width=112,height=112 ! pngenc ! multifilesink location="$out/denoised_%03d.png" \
  d. ! queue ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=veryfast tune=zerolatency ! mp4mux ! filesink location="$out/denoised.mp4"
echo "wrote $out/noisy_*.png, $out/denoised_*.png and $out/denoised.mp4"
