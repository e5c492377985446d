// Denoising frames by running the sampler from the noise level the frame sits at (docs/method.md "Denoising").
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "cff/energy.h"
#include "cff/schedule.h"

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

// Robust per-image estimate of additive white Gaussian noise sigma, in the images' own units.
// x: [N, C, H, W]. Uses the median absolute deviation of a Laplacian-like high-pass residual
// (the 3x3 kernel [1 -2 1; -2 4 -2; 1 -2 1] has unit-variance gain 6 on white noise).
// Images smaller than 3x3 return 0. Returns [N] (double-precision values in a float tensor).
torch::Tensor estimate_noise_sigma(const torch::Tensor &x);

struct DenoiseOptions {
  int64_t steps = 1;     // 1 = one-shot x0 estimate; more = sharper, slower
  double eta = 0.0;      // 0 keeps the result deterministic
  uint64_t seed = 0;
  bool clip = true;
};

// Denoises x_noisy [N, C, H, W] (model-sized, in [-1, 1]) whose noise level per image is sigma [N]
// (in [-1, 1] units; an image with sigma <= 0 is returned unchanged).
torch::Tensor denoise(const LogitsFunction &f, const CosineSchedule &schedule, const torch::Tensor &x_noisy,
                      const torch::Tensor &sigma, const DenoiseOptions &options = {});

}  // namespace cff

namespace cff {

// Denoises one image x [C, H, W] of any size (in [-1, 1] units, on f's device) with a model whose
// input is model_height x model_width. The image is cut into model-sized tiles overlapping by
// half a tile, each tile is denoised with `denoise` at the same sigma (in [-1, 1] units), and the
// tiles are blended with raised-cosine (Hann) weights, which sum to one where tiles overlap by
// half, so no seams show. An image smaller than the model along an axis is reflect-padded to the
// model's size and cropped back. tile_batch tiles go through the network at once.
// Returns [C, H, W]. Throws std::invalid_argument on a bad shape or tile_batch < 1.
torch::Tensor denoise_tiled(const LogitsFunction &f, const CosineSchedule &schedule, const torch::Tensor &x,
                            int64_t model_height, int64_t model_width, double sigma,
                            const DenoiseOptions &options = {}, int64_t tile_batch = 16);

}  // namespace cff
#pragma GCC visibility pop
