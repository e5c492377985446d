#!/usr/bin/env bash
# Builds tests/pkgconfig/consumer.cpp with nothing but `pkg-config --cflags --libs cff` (the uninstalled
# cff.pc of this build) and runs it on the shipped model. Usage: build_consumer.sh BUILD_ROOT SOURCE_ROOT
set -euo pipefail
build=$1 source=$2
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
export PKG_CONFIG_PATH="$build/meson-uninstalled"
flags="$(pkg-config --cflags --libs cff)"
# shellcheck disable=SC2086  # the flags are words
c++ -std=c++17 -o "$out/consumer" "$source/tests/pkgconfig/consumer.cpp" $flags
LD_LIBRARY_PATH="$build/libcff" "$out/consumer" "$source/models/fashion-mnist-cff.cff"
