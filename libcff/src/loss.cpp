#include "cff/loss.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <stdexcept>

#include <torch/nn/functional/loss.h>

namespace cff {

CffLossTerms cff_loss(const LogitsFunction &f, const torch::Tensor &x0, const torch::Tensor &y,
                      const CosineSchedule &schedule, const CffLossOptions &options,
                      c10::optional<at::Generator> generator, const BatchShard &shard) {
  if (x0.dim() != 4) throw std::invalid_argument("cff_loss: expected images [N, C, H, W]");
  if (!(options.force_fraction > 0.0 && options.force_fraction <= 1.0)) {
    throw std::invalid_argument("cff_loss: force_fraction must be in (0, 1], got " + std::to_string(options.force_fraction));
  }
  const int64_t batch = shard.global_rows(x0.size(0));
  const int64_t n = std::clamp<int64_t>(std::llround(options.force_fraction * static_cast<double>(batch)), 1, batch);
  const double d = static_cast<double>(x0[0].numel());
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat32);

  // All random draws on the CPU from one generator: a seed gives the same batch on every device. They are
  // the global batch's; this shard noises its rows among the global first n.
  auto t = shard.rows_of(torch::randint(1, schedule.max_time() + 1, {n}, generator, cpu.dtype(torch::kLong)), n);
  auto eps = shard.rows_of(torch::randn({n, x0.size(1), x0.size(2), x0.size(3)}, generator, cpu), n);
  auto uncond = shard.rows_of(torch::rand({n}, generator, cpu) < options.p_uncond, n);
  const int64_t n_local = t.size(0);

  CffLossTerms terms;
  auto logits_clean = f(x0);
  const auto sum = torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum);
  terms.ce_clean = torch::nn::functional::cross_entropy(logits_clean, y, sum) / static_cast<double>(batch);
  terms.logits_clean = logits_clean.detach();

  if (n_local > 0) {
    eps = eps.to(x0.device());
    uncond = uncond.to(x0.device());
    auto x_t = schedule.diffuse(x0.narrow(0, 0, n_local), schedule.alpha_bar(t), eps);
    const auto y_noisy = y.narrow(0, 0, n_local);
    // One forward on x_t gives both the noisy logits and (through its input gradient) the force.
    // Per sample, the potential is LSE (unconditional, with probability p_uncond) or f_y.
    ForceOptions force_options;
    force_options.labels = y_noisy;
    force_options.unconditional = uncond;
    force_options.create_graph = true;
    const auto force = force_direction(f, x_t, force_options);
    const auto &logits_noisy = force.logits;
    terms.force = (force.noise_estimate() - eps).pow(2).flatten(1).sum(1).sum() / (static_cast<double>(n) * d);
    terms.ce_noisy = torch::nn::functional::cross_entropy(logits_noisy, y_noisy, sum) / static_cast<double>(n);
  } else {
    // None of this shard's rows is noised: its share of the noised terms is 0 (still part of the graph).
    terms.force = logits_clean.sum() * 0.0;
    terms.ce_noisy = logits_clean.sum() * 0.0;
  }
  terms.total = terms.ce_clean + options.beta * terms.force;
  if (options.gamma != 0.0) terms.total = terms.total + options.gamma * terms.ce_noisy;
  terms.ce_noisy = terms.ce_noisy.detach();
  terms.margin = torch::zeros({}, logits_clean.options());
  if (options.margin_weight > 0.0) {
    const auto outliers = shuffled_patches(x0.detach(), generator);
    const auto u_in = -torch::logsumexp(logits_clean, 1), u_out = -torch::logsumexp(f(outliers), 1);
    auto margin = ((u_in - options.margin_in).clamp_min(0).pow(2).sum() +
                   (options.margin_out - u_out).clamp_min(0).pow(2).sum()) / static_cast<double>(batch);
    terms.total = terms.total + options.margin_weight * margin;
    terms.margin = margin.detach();
  }
  return terms;
}

torch::Tensor shuffled_patches(const torch::Tensor &x, c10::optional<at::Generator> generator) {
  if (x.dim() != 4) throw std::invalid_argument("shuffled_patches: expected images [N, C, H, W]");
  constexpr int64_t grid = 4;
  const int64_t ph = x.size(2) / grid, pw = x.size(3) / grid;
  if (ph < 1 || pw < 1) throw std::invalid_argument("shuffled_patches: images smaller than 4 x 4");
  auto order = torch::randperm(grid * grid, generator, torch::TensorOptions().dtype(torch::kLong));
  if (torch::equal(order, torch::arange(grid * grid, order.options()))) order = order.roll(1);
  auto out = x.clone();
  const auto o = order.accessor<int64_t, 1>();
  for (int64_t cell = 0; cell < grid * grid; ++cell) {
    const int64_t from = o[cell];
    out.narrow(2, (cell / grid) * ph, ph).narrow(3, (cell % grid) * pw, pw)
        .copy_(x.narrow(2, (from / grid) * ph, ph).narrow(3, (from % grid) * pw, pw));
  }
  return out;
}

CffLossTerms cross_entropy_loss(const LogitsFunction &f, const torch::Tensor &x0, const torch::Tensor &y,
                                const BatchShard &shard) {
  const int64_t batch = shard.global_rows(x0.size(0));
  CffLossTerms terms;
  auto logits = f(x0);
  terms.ce_clean = torch::nn::functional::cross_entropy(
                       logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                   static_cast<double>(batch);
  terms.total = terms.ce_clean;
  terms.ce_noisy = torch::zeros({}, logits.options());
  terms.force = torch::zeros({}, logits.options());
  terms.margin = torch::zeros({}, logits.options());
  terms.logits_clean = logits.detach();
  return terms;
}

}  // namespace cff

namespace cff {

void RobustLossOptions::validate() const {
  const auto fail = [](const std::string &what) { throw std::invalid_argument("robust training: " + what); };
  if (mode != "none" && mode != "pgd" && mode != "trades" && mode != "weat") {
    fail("mode must be none, pgd, trades or weat, got '" + mode + "'");
  }
  if (!(eps > 0.0 && eps <= 1.0)) fail("eps must be in (0, 1] pixel units, got " + std::to_string(eps));
  if (steps < 1) fail("steps must be >= 1");
  if (!(step_size >= 0.0) || !std::isfinite(step_size)) fail("the step size must be >= 0 (0 = eps / 4)");
  if (!(beta >= 0.0) || !std::isfinite(beta)) fail("beta must be >= 0");
}

namespace {
torch::Tensor weat_raw_weights(const torch::Tensor &energy) { return 1.0 / torch::log1p(torch::exp(energy.detach().abs())); }
}  // namespace

torch::Tensor weat_weights(const torch::Tensor &energy) {
  const auto w = weat_raw_weights(energy);
  return w / w.mean();
}

RobustTerms robust_loss(const LogitsFunction &f, const torch::Tensor &x0, const torch::Tensor &y,
                        const RobustLossOptions &options, c10::optional<at::Generator> generator,
                        const BatchShard &shard) {
  options.validate();
  if (options.mode == "none") throw std::invalid_argument("robust_loss: mode is none");
  const bool kl = options.mode != "pgd";
  const double step = options.step_size > 0 ? options.step_size : options.eps / 4;
  const double batch = static_cast<double>(shard.global_rows(x0.size(0)));
  const auto adversarial =
      training_adversary(f, x0, y, kl, options.eps, options.steps, step, options.scale, generator, shard);
  const auto logits_adv = f(adversarial);
  namespace F = torch::nn::functional;
  RobustTerms terms;
  terms.logits_adversarial = logits_adv.detach();
  const auto ce = F::cross_entropy(logits_adv, y, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  if (!kl) {
    terms.total = ce.sum() / batch;
    return terms;
  }
  // KL(p(.|x) || p(.|x*)) per image, both sides differentiable as in TRADES.
  const auto logits_clean = f(x0);
  const auto log_p = torch::log_softmax(logits_clean, 1), log_q = torch::log_softmax(logits_adv, 1);
  const auto kl_per_image = (log_p.exp() * (log_p - log_q)).sum(1);
  if (options.mode == "trades") {
    terms.total = options.beta * kl_per_image.sum() / batch;
    return terms;
  }
  // WEAT's weights are divided by their mean over the global batch.
  const auto raw = weat_raw_weights(free_energy(logits_clean));
  auto raw_sum = raw.sum().reshape({1});
  if (shard.sum_across) raw_sum = shard.sum_across(raw_sum);
  const auto w = raw / (raw_sum / batch);
  terms.total = (w * (ce + options.beta * kl_per_image)).sum() / batch;
  return terms;
}

}  // namespace cff
