#!/usr/bin/env bash
# Makes the clips the other scripts play (Motion-JPEG AVI, ground truth as CSV next to each):
#   fashion.avi  Fashion-MNIST test images, one per frame (in distribution)
#   mixed.avi    segments of 10 Fashion-MNIST frames alternating with 10 frames of a natural video
#                from Debian's opencv-doc (out of distribution)
#   noisy.avi    Fashion-MNIST frames with Gaussian noise, sigma 25 (0-255 units), 112x112
# Usage: pipelines/make-clips.sh [OUTDIR]   (CLIP_FRAMES=... frames of each kind, default 100)
set -euo pipefail
source "$(dirname "$0")/common.sh"
out="${1:-$CLIPS}"
mkdir -p "$out"
video="${OOD_VIDEO:-/usr/share/doc/opencv-doc/examples/data/vtest.avi}"
"$BUILD/tools/cff-make-clip" --out "$out/fashion.avi" --frames "$CLIP_FRAMES"
"$BUILD/tools/cff-make-clip" --out "$out/mixed.avi" --frames "$CLIP_FRAMES" --start 1000 \
  --ood-video "$video" --ood-frames "$CLIP_FRAMES" --segment 10
"$BUILD/tools/cff-make-clip" --out "$out/noisy.avi" --frames "$CLIP_FRAMES" --start 2000 --noise 25 --seed 1 \
  --size 112x112  # cffdenoise works in 28x28 tiles: a smaller frame is fewer tiles
