#include "cff/sampler.h"

#include <cmath>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>

#include "cff/seeds.h"

namespace cff {

CentripetalOptions centripetal_options(const SamplerSettings &settings, uint64_t seed) {
  CentripetalOptions options;
  options.steps = settings.steps;
  options.eta = settings.eta;
  options.t_start = settings.t_start;
  options.seed = seed;
  options.guidance = settings.guidance;
  options.spacing_power = settings.spacing_power;
  options.corrector_steps = settings.corrector_steps;
  options.corrector_snr = settings.corrector_snr;
  return options;
}
namespace {

at::Generator cpu_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

void check_chw(c10::IntArrayRef chw) {
  if (chw.size() != 3 || chw[0] < 1 || chw[1] < 1 || chw[2] < 1) {
    throw std::invalid_argument("sampler: image shape must be [C, H, W] with positive sizes");
  }
}

}  // namespace

torch::Tensor seeded_normal(c10::IntArrayRef shape, uint64_t seed, const c10::Device &device) {
  auto gen = cpu_generator(seed);
  return torch::randn(shape, gen, torch::kFloat32).to(device);
}

torch::Tensor run_centripetal(const LogitsFunction &f, const CosineSchedule &schedule, const torch::Tensor &x_start,
                              const torch::Tensor &t_start, const CentripetalOptions &options) {
  if (x_start.dim() != 4) throw std::invalid_argument("sampler: expected x [N, C, H, W]");
  if (options.steps < 1) throw std::invalid_argument("sampler: steps must be >= 1");
  if (options.eta < 0.0) throw std::invalid_argument("sampler: eta must be >= 0");
  if (!(options.spacing_power > 0.0)) throw std::invalid_argument("sampler: spacing power must be > 0");
  if (options.corrector_steps < 0) throw std::invalid_argument("sampler: corrector steps must be >= 0");
  if (!(options.corrector_snr > 0.0)) throw std::invalid_argument("sampler: corrector SNR must be > 0");
  const int64_t n = x_start.size(0);
  auto t0 = t_start.to(torch::kCPU, torch::kDouble).contiguous();
  if (t0.numel() != n) throw std::invalid_argument("sampler: one start time per sample expected");
  auto gen = cpu_generator(options.seed);

  ForceOptions force_options;
  force_options.labels = options.labels;
  force_options.guidance = options.guidance;
  force_options.guide = options.guide;

  // The steps are the paper's around 0: they move the state's offset from the schedule's centre m
  // (x - m), and the network sees x itself.
  const auto m = schedule.centre_like(x_start);
  torch::Tensor x = x_start.detach() - m;
  torch::Tensor x0_hat = x;
  for (int64_t step = 0; step < options.steps; ++step) {
    // Times from each sample's start down to 0, spaced by spacing_power (1 = evenly).
    const double steps = static_cast<double>(options.steps);
    const double frac_now = std::pow(static_cast<double>(options.steps - step) / steps, options.spacing_power);
    const double frac_next = std::pow(static_cast<double>(options.steps - step - 1) / steps, options.spacing_power);
    // Per-sample schedule values, in double on the CPU until they scale the images.
    const auto a_now = schedule.alpha_bar(t0 * frac_now), a_next = schedule.alpha_bar(t0 * frac_next);
    auto sigma = torch::zeros_like(a_now);
    if (options.eta > 0.0) {
      const auto noisy = (a_next < 1.0).logical_and(a_now < 1.0);
      const auto s = options.eta * ((1.0 - a_next) / (1.0 - a_now)).sqrt() * (1.0 - a_now / a_next).clamp_min(0.0).sqrt();
      sigma = torch::where(noisy, s, sigma);
    }
    const auto dir_scale = (1.0 - a_next - sigma * sigma).clamp_min(0.0).sqrt();
    auto eps_hat = force_direction(f, x + m, force_options).noise_estimate().detach();
    auto an = per_sample(a_now, x);
    x0_hat = (x - (1.0 - an).sqrt() * eps_hat) / an.sqrt();
    if (options.clip) x0_hat = (x0_hat + m).clamp(-1.0, 1.0) - m;
    x = per_sample(a_next, x).sqrt() * x0_hat + per_sample(dir_scale, x) * eps_hat;
    if ((sigma > 0.0).any().item<bool>()) {
      auto z = torch::randn(x.sizes(), gen, torch::kFloat32).to(x.device());
      x = x + per_sample(sigma, x) * z;
    }
    if (options.corrector_steps > 0 && step + 1 < options.steps) {
      const auto scale = per_sample((1.0 - a_next).clamp_min(0.0).sqrt(), x);
      const double r = options.corrector_snr;
      for (int64_t c = 0; c < options.corrector_steps; ++c) {
        auto direction = force_direction(f, x + m, force_options).noise_estimate().detach();
        auto z = torch::randn(x.sizes(), gen, torch::kFloat32).to(x.device());
        x = x - (2.0 * r * r) * scale * direction + (2.0 * r) * scale * z;
      }
    }
    if (options.on_step) options.on_step(step, x0_hat + m);
  }
  return x0_hat + m;
}

torch::Tensor centripetal_start(const CosineSchedule &schedule, int64_t n, c10::IntArrayRef chw, uint64_t seed,
                                const c10::Device &device) {
  check_chw(chw);
  auto z = seeded_normal({n, chw[0], chw[1], chw[2]}, start_noise_seed(seed), device);
  return z + schedule.centre_like(z);
}

torch::Tensor sample_centripetal(const LogitsFunction &f, const CosineSchedule &schedule, int64_t n,
                                 c10::IntArrayRef chw, const CentripetalOptions &options, const c10::Device &device) {
  check_chw(chw);
  if (n < 1) throw std::invalid_argument("sampler: n must be >= 1");
  if (!(options.t_start > 0.0 && options.t_start <= static_cast<double>(schedule.max_time()))) {
    throw std::invalid_argument("sampler: t_start must be in (0, T]");
  }
  // The start noise and the per-step noise come from different streams of the same seed.
  auto x = centripetal_start(schedule, n, chw, options.seed, device);
  auto t = torch::full({n}, options.t_start, torch::kDouble);
  return run_centripetal(f, schedule, x, t, options);
}

namespace {

// The potential the baselines climb: f_y (or log p(y|x) alone) with labels, LSE without.
ForceOptions baseline_potential(const torch::Tensor &labels, bool log_posterior) {
  ForceOptions options;
  options.labels = labels;
  options.log_posterior_only = log_posterior;
  return options;
}

torch::Tensor uniform_start(int64_t n, c10::IntArrayRef chw, uint64_t seed, const c10::Device &device) {
  auto gen = cpu_generator(start_noise_seed(seed));
  return (torch::rand({n, chw[0], chw[1], chw[2]}, gen, torch::kFloat32) * 2.0 - 1.0).to(device);
}

}  // namespace

torch::Tensor sample_langevin(const LogitsFunction &f, int64_t n, c10::IntArrayRef chw, const LangevinOptions &options,
                              const c10::Device &device) {
  check_chw(chw);
  if (n < 1 || options.steps < 0) throw std::invalid_argument("langevin: n must be >= 1 and steps >= 0");
  auto gen = cpu_generator(options.seed);
  auto x = uniform_start(n, chw, options.seed, device);
  const auto potential = baseline_potential(options.labels, /*log_posterior=*/false);
  for (int64_t step = 0; step < options.steps; ++step) {
    // grad U = -grad LSE (or -grad f_y), so x - (alpha/2) grad U = x + (alpha/2) grad(potential).
    auto g = potential_gradient(f, x, potential).gradient;
    x = x + 0.5 * options.step_size * g;
    if (options.noise > 0.0) x = x + options.noise * torch::randn(x.sizes(), gen, torch::kFloat32).to(device);
    if (options.clip) x = x.clamp(-1.0, 1.0);
    if (options.on_step) options.on_step(step, x);
  }
  return x.detach();
}

torch::Tensor sample_ascent(const LogitsFunction &f, int64_t n, c10::IntArrayRef chw, const AscentOptions &options,
                            const c10::Device &device) {
  check_chw(chw);
  if (n < 1 || options.steps < 0) throw std::invalid_argument("ascent: n must be >= 1 and steps >= 0");
  auto x = uniform_start(n, chw, options.seed, device);
  const auto potential = baseline_potential(options.labels, /*log_posterior=*/true);
  for (int64_t step = 0; step < options.steps; ++step) {
    // The force points down the potential; ascent climbs it.
    x = x - options.step_size * force_direction(f, x, potential).direction;
    if (options.clip) x = x.clamp(-1.0, 1.0);
    if (options.on_step) options.on_step(step, x);
  }
  return x.detach();
}

}  // namespace cff
