// Denoising frames by running the sampler from the noise level the frame sits at (METHOD.md).
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "cff/energy.h"
#include "cff/schedule.h"

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
