#!/usr/bin/env bash
# cffclassify against its Python peer pycffclassify (tools/bench/python/cffclassify_py.py) on the
# same frames, in one process with interleaved rounds and the same LibTorch threads: prints the
# frames/s of each, the ratio C++/Python and how often their top-1 labels agree.
#
# Usage: tools/bench/python_peer.sh [bench-classify options: --frames 200 --threads 1 --size 320x240 --format RGB ...]
# Environment: BUILD (build folder, default <repo>/build) or BENCH_CLASSIFY (the bench-classify binary).
# Exits 77 (skipped) when gst-python or the system Python's torch/numpy are missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD:-$root/build}"
bench="${BENCH_CLASSIFY:-$build/tools/bench-classify}"

# The peer runs in the system Python that gst-python embeds (Debian: python3-gst-1.0,
# gstreamer1.0-python3-plugin-loader, python3-torch, python3-numpy), never a pyenv/venv one.
if ! /usr/bin/python3 -c 'import gi
gi.require_version("Gst", "1.0"); gi.require_version("GstBase", "1.0"); gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstBase, GstVideo
import numpy, torch' 2>/dev/null; then
  echo "python_peer: skipped: /usr/bin/python3 lacks gi (Gst, GstBase, GstVideo), torch or numpy" >&2
  exit 77
fi
plugins_dir="$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null || echo "/usr/lib/$(gcc -print-multiarch 2>/dev/null)/gstreamer-1.0")"
if [ ! -e "$plugins_dir/libgstpython.so" ]; then
  echo "python_peer: skipped: no gst-python plugin loader ($plugins_dir/libgstpython.so)" >&2
  exit 77
fi
if [ ! -x "$bench" ]; then
  echo "python_peer: $bench not found: build it (ninja -C $build tools/bench-classify) or set BENCH_CLASSIFY" >&2
  exit 1
fi

# gst-python loads Python elements from python/ under each GST_PLUGIN_PATH entry: tools/bench/python/.
export GST_PLUGIN_PATH_1_0="$(dirname "$bench")/../gst-plugin:$here${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"
export GST_REGISTRY_1_0="${GST_REGISTRY_1_0:-$(dirname "$bench")/registry-python-peer.bin}"

model_given=false
for a in "$@"; do [ "$a" = "--model" ] && model_given=true; done
model_args=()
$model_given || model_args=(--model "$root/models/fashion-mnist-cff.cff")
exec "$bench" "${model_args[@]}" --peer pycffclassify "$@"
