#!/usr/bin/env bash
# Installs dependencies (tools/setup.sh) and configures + builds cff in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
if [ ! -f build/build.ninja ]; then
  meson setup build
fi
ninja -C build
