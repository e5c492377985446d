// PNG writing for sample grids and plots (8-bit grey or RGB), through libpng's simplified API.
#pragma once

#include <string>

#include <torch/types.h>

namespace cff::data {

// False on a build without libpng (the meson option `png`): encode_png and write_png then throw.
bool png_supported();

// Encodes uint8 [H, W] (grey) or [3, H, W] / [1, H, W] images as PNG bytes.
std::string encode_png(const torch::Tensor &image);

// Writes a PNG atomically (temp file + rename). Throws std::runtime_error naming the path.
void write_png(const std::string &path, const torch::Tensor &image);

// Tiles images [N, C, H, W] (float in [-1, 1]) into a grid of `columns`, with a 1-pixel gap,
// each image scaled up by `zoom`. Returns uint8 [C, H', W'].
torch::Tensor make_grid(const torch::Tensor &images, int64_t columns, int64_t zoom = 2);

}  // namespace cff::data
