#!/usr/bin/env bash
# Installs every Debian package cff needs to build, test and run its demo.
# Idempotent: safe to run again. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build cmake git
  libtorch-dev libgloo-dev nlohmann-json3-dev libcli11-dev libpng-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  libopencv-dev
  libpango1.0-dev libcairo2-dev fonts-dejavu-core
  dataset-fashion-mnist opencv-doc
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  valgrind
  clang-14 libclang-rt-14-dev
  python3-gst-1.0 gstreamer1.0-python3-plugin-loader python3-torch python3-numpy python3-opencv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
