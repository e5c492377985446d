#!/usr/bin/env bash
# README command 1: install, build, and run the demo with the shipped model.
# Without a shipped model (a fresh checkout before the first release), it first trains a small one
# for about a minute so the demo always has something real to show.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
model=models/fashion-mnist-cff.cff
if [ ! -f "$model" ]; then
  model=build/demo-model.cff
  if [ ! -f "$model" ]; then
    echo "demo: no shipped model yet; training a small one on 6000 Fashion-MNIST images (about a minute)"
    ./build/training/cff-train --limit 6000 --epochs 2 --eval-limit 1000 --samples-every 0 \
      --out build/demo-run --export "$model" --progress 20
  fi
fi
./build/tools/cff-demo "$model" demo-output
echo
echo "demo: images are in $(pwd)/demo-output"
