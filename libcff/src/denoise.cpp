#include "cff/denoise.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include <torch/nn/functional/conv.h>

#include "cff/sampler.h"

namespace cff {

torch::Tensor estimate_noise_sigma(const torch::Tensor &x) {
  if (x.dim() != 4) throw std::invalid_argument("noise estimate: expected images [N, C, H, W]");
  const int64_t n = x.size(0), c = x.size(1);
  if (x.size(2) < 3 || x.size(3) < 3) return torch::zeros({n}, x.options().dtype(torch::kFloat32));
  torch::NoGradGuard no_grad;
  auto kernel = torch::tensor({1.f, -2.f, 1.f, -2.f, 4.f, -2.f, 1.f, -2.f, 1.f}, x.options().dtype(torch::kFloat32))
                    .view({1, 1, 3, 3})
                    .repeat({c, 1, 1, 1});
  auto residual = torch::nn::functional::conv2d(x.to(torch::kFloat32), kernel,
                                                torch::nn::functional::Conv2dFuncOptions().groups(c));
  // Median absolute deviation: robust to the few edges a natural image adds to the residual.
  auto mad = std::get<0>(residual.abs().flatten(1).median(1));
  return mad / (0.6744897501960817 * 6.0);
}

torch::Tensor denoise(const LogitsFunction &f, const CosineSchedule &schedule, const torch::Tensor &x_noisy,
                      const torch::Tensor &sigma, const DenoiseOptions &options) {
  if (x_noisy.dim() != 4) throw std::invalid_argument("denoise: expected images [N, C, H, W]");
  const int64_t n = x_noisy.size(0);
  auto s = sigma.to(torch::kCPU, torch::kDouble).contiguous();
  if (s.numel() != n) throw std::invalid_argument("denoise: one sigma per image expected");
  auto t_star = torch::empty({n}, torch::kDouble);
  const auto *sp = s.data_ptr<double>();
  auto *tp = t_star.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(sp[i])) throw std::invalid_argument("denoise: sigma must be finite");
    // x~ = x0 + sigma n sits on the centripetal path at lambda(t*) = sigma; in VP form
    // x_t* = m + sqrt(ab) (x~ - m) (m: the schedule's centre).
    tp[i] = schedule.t_for_lambda(sp[i]);
  }
  auto x_start = schedule.diffuse(x_noisy.to(torch::kFloat32), schedule.alpha_bar(t_star), torch::Tensor());
  CentripetalOptions centripetal;
  centripetal.steps = options.steps;
  centripetal.eta = options.eta;
  centripetal.seed = options.seed;
  centripetal.clip = options.clip;
  centripetal.corrector_steps = 0;  // denoising follows the plain path from the frame's noise level
  auto result = run_centripetal(f, schedule, x_start, t_star, centripetal);
  // Images with no noise are passed through untouched.
  auto keep = (s <= 0.0).to(torch::kBool).to(x_noisy.device()).view({-1, 1, 1, 1});
  return torch::where(keep, x_noisy.to(torch::kFloat32), result);
}

}  // namespace cff

namespace cff {
namespace {

// Indices 0..target-1 of an axis of length `size` reflect-padded (mirror without repeating the
// edge, like numpy's "reflect") to `target`, centred. Any pad width works, also beyond `size`.
torch::Tensor reflect_indices(int64_t size, int64_t target) {
  std::vector<int64_t> index(static_cast<size_t>(target));
  const int64_t before = (target - size) / 2;
  const int64_t period = 2 * (size - 1);
  for (int64_t i = 0; i < target; ++i) {
    if (size == 1) {
      index[static_cast<size_t>(i)] = 0;
      continue;
    }
    const int64_t m = (((i - before) % period) + period) % period;
    index[static_cast<size_t>(i)] = m < size ? m : period - m;
  }
  return torch::tensor(index, torch::kLong);
}

// Tile origins along an axis: the first at 0, the last at size - tile, evenly spaced by at most
// half a tile so that every pixel away from the border lies in two tiles.
std::vector<int64_t> tile_starts(int64_t size, int64_t tile) {
  if (size <= tile) return {0};
  const int64_t stride = std::max<int64_t>(1, tile / 2);
  const int64_t count = (size - tile + stride - 1) / stride + 1;
  std::vector<int64_t> starts;
  for (int64_t k = 0; k < count; ++k) {
    starts.push_back(static_cast<int64_t>(std::llround(static_cast<double>(k) * static_cast<double>(size - tile) /
                                                        static_cast<double>(count - 1))));
  }
  return starts;
}

// The periodic Hann window sampled at pixel centres: positive everywhere, so a border pixel
// covered by one tile keeps a (small) weight, and shifted copies half a window apart sum to one.
torch::Tensor hann_window(int64_t length) {
  auto i = torch::arange(length, torch::kFloat64).add(0.5);
  return (0.5 - 0.5 * torch::cos(i * (2.0 * 3.14159265358979323846 / static_cast<double>(length)))).to(torch::kFloat32);
}

}  // namespace

torch::Tensor denoise_tiled(const LogitsFunction &f, const CosineSchedule &schedule, const torch::Tensor &x,
                            int64_t model_height, int64_t model_width, double sigma, const DenoiseOptions &options,
                            int64_t tile_batch) {
  if (x.dim() != 3 || x.size(1) < 1 || x.size(2) < 1) {
    throw std::invalid_argument("denoise_tiled: expected an image [C, H, W]");
  }
  if (model_height < 1 || model_width < 1 || tile_batch < 1) {
    throw std::invalid_argument("denoise_tiled: model size and tile batch must be positive");
  }
  const int64_t height = x.size(1), width = x.size(2);
  auto image = x.to(torch::kFloat32);
  if (height < model_height) image = image.index_select(1, reflect_indices(height, model_height).to(x.device()));
  if (width < model_width) image = image.index_select(2, reflect_indices(width, model_width).to(x.device()));
  const int64_t padded_h = image.size(1), padded_w = image.size(2);

  const auto ys = tile_starts(padded_h, model_height), xs = tile_starts(padded_w, model_width);
  std::vector<std::pair<int64_t, int64_t>> origins;
  for (auto y : ys) {
    for (auto x0 : xs) origins.emplace_back(y, x0);
  }
  auto window = (hann_window(model_height).view({-1, 1}) * hann_window(model_width).view({1, -1})).to(x.device());
  auto sum = torch::zeros_like(image);
  auto weight = torch::zeros({1, padded_h, padded_w}, image.options());
  for (size_t first = 0; first < origins.size(); first += static_cast<size_t>(tile_batch)) {
    const size_t last = std::min(origins.size(), first + static_cast<size_t>(tile_batch));
    std::vector<torch::Tensor> tiles;
    for (size_t k = first; k < last; ++k) {
      tiles.push_back(image.narrow(1, origins[k].first, model_height).narrow(2, origins[k].second, model_width));
    }
    auto batch = torch::stack(tiles);
    auto sigmas = torch::full({batch.size(0)}, sigma, torch::kFloat64);
    auto clean = denoise(f, schedule, batch, sigmas, options).detach();
    for (size_t k = first; k < last; ++k) {
      const auto [y, x0] = origins[k];
      sum.narrow(1, y, model_height).narrow(2, x0, model_width).add_(clean[static_cast<int64_t>(k - first)] * window);
      weight.narrow(1, y, model_height).narrow(2, x0, model_width).add_(window);
    }
  }
  auto blended = sum / weight;
  // Crop the reflect padding back off.
  return blended.narrow(1, (padded_h - height) / 2, height).narrow(2, (padded_w - width) / 2, width);
}

}  // namespace cff
