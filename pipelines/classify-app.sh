#!/usr/bin/env bash
# The application examples: cff-classify-app (C++) and apps/classify_appsink.py (Python) read
# cffclassify's per-frame results from an appsink and, with the clip's ground truth, print the
# accuracy on Fashion-MNIST frames and how often each kind of frame was flagged out of distribution.
# Usage: pipelines/classify-app.sh [CLIP]   (MODEL=... to override; QUIET=1 prints only the summaries)
set -euo pipefail
source "$(dirname "$0")/common.sh"
ensure_clips
clip="${1:-$CLIPS/mixed.avi}"
truth="${clip%.*}.csv"
quiet=()
[ -n "${QUIET:-}" ] && quiet=(--quiet)
echo "== C++ application (cff-classify-app)"
"$BUILD/pipelines/cff-classify-app" --model "$MODEL" --truth "$truth" "${quiet[@]}" "$clip"
echo "== Python application (apps/classify_appsink.py)"
/usr/bin/python3 "$root/pipelines/apps/classify_appsink.py" --model "$MODEL" --truth "$truth" "${quiet[@]}" "$clip"
