#include "cff/denoise.h"

#include <stdexcept>

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
  std::vector<double> t_star(n), scale(n);
  const auto *sp = s.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(sp[i])) throw std::invalid_argument("denoise: sigma must be finite");
    // x~ = x0 + sigma n sits on the centripetal path at lambda(t*) = sigma; in VP form x_t* = sqrt(ab) x~.
    t_star[i] = schedule.t_for_lambda(sp[i]);
    scale[i] = std::sqrt(schedule.alpha_bar(t_star[i]));
  }
  std::vector<float> scale_f(scale.begin(), scale.end());
  auto scale_t = torch::from_blob(scale_f.data(), {n, 1, 1, 1}, torch::kFloat32).clone().to(x_noisy.device());
  auto x_start = x_noisy.to(torch::kFloat32) * scale_t;
  CentripetalOptions centripetal;
  centripetal.steps = options.steps;
  centripetal.eta = options.eta;
  centripetal.seed = options.seed;
  centripetal.clip = options.clip;
  auto t = torch::from_blob(t_star.data(), {n}, torch::kDouble).clone();
  auto result = run_centripetal(f, schedule, x_start, t, centripetal);
  // Images with no noise are passed through untouched.
  auto keep = (s <= 0.0).to(torch::kBool).to(x_noisy.device()).view({-1, 1, 1, 1});
  return torch::where(keep, x_noisy.to(torch::kFloat32), result);
}

}  // namespace cff
