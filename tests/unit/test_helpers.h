// Small shared fixtures for the libcff unit tests.
#pragma once

#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "cff/cff.h"

namespace cff_test {

// A tiny classifier for fast tests.
inline cff::NetworkConfig tiny_config(int64_t c = 1, int64_t h = 8, int64_t w = 8, int64_t k = 4) {
  cff::NetworkConfig config;
  config.channels = c;
  config.height = h;
  config.width = w;
  config.num_classes = k;
  config.widths = {8, 16};
  config.blocks_per_stage = 1;
  config.groups = 4;
  return config;
}

inline cff::ModelMetadata tiny_metadata(const cff::NetworkConfig &config) {
  cff::ModelMetadata m;
  m.network = config;
  for (int64_t k = 0; k < config.num_classes; ++k) m.labels.push_back("class" + std::to_string(k));
  m.normalization.mean.assign(config.channels, 0.5);
  m.normalization.std.assign(config.channels, 0.5);
  return m;
}

// A mixture of K "prototype" images (modes) in [-1, 1]: class k lights a different block of the
// image. Samples are the prototype plus small Gaussian jitter.
struct PrototypeMixture {
  torch::Tensor modes;  // [K, C, H, W]

  explicit PrototypeMixture(int64_t k = 4, int64_t c = 1, int64_t h = 8, int64_t w = 8) {
    modes = torch::full({k, c, h, w}, -0.8);
    for (int64_t i = 0; i < k; ++i) {
      const int64_t r = (i / 2) * (h / 2), q = (i % 2) * (w / 2);
      modes[i].slice(1, r, r + h / 2).slice(2, q, q + w / 2).fill_(0.8);
    }
  }

  std::pair<torch::Tensor, torch::Tensor> draw(int64_t n, uint64_t seed, double jitter = 0.05) const {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto y = torch::randint(0, modes.size(0), {n}, gen, torch::kLong);
    auto x = modes.index_select(0, y) + jitter * torch::randn({n, modes.size(1), modes.size(2), modes.size(3)}, gen);
    return {x.clamp(-1, 1), y};
  }

  // Distance from each sample to its nearest mode. [N]
  torch::Tensor nearest_mode_distance(const torch::Tensor &x) const {
    auto diff = x.unsqueeze(1) - modes.unsqueeze(0);                 // [N, K, C, H, W]
    return std::get<0>(diff.flatten(2).norm(2, 2).min(1));
  }
};

}  // namespace cff_test
