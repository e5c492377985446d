#include "cff/energy.h"

#include <cmath>
#include <stdexcept>

#include <torch/autograd.h>

namespace cff {

torch::Tensor free_energy(const torch::Tensor &logits) { return -torch::logsumexp(logits, 1); }

torch::Tensor class_posterior(const torch::Tensor &logits) { return torch::softmax(logits, 1); }

namespace {

torch::Tensor per_sample_potential(const torch::Tensor &logits, const torch::Tensor &x, const ForceOptions &options) {
  auto lse = torch::logsumexp(logits, 1);
  if (!options.labels.defined()) return lse;
  const auto labels = options.labels.to(logits.device(), torch::kLong).view({-1, 1});
  if (labels.size(0) != logits.size(0)) {
    throw std::invalid_argument("force: " + std::to_string(labels.size(0)) + " labels for a batch of " +
                                std::to_string(logits.size(0)));
  }
  const double w = options.guidance;
  torch::Tensor conditional;
  if (options.guide || options.log_posterior_only) {
    auto log_p = torch::log_softmax(options.guide ? options.guide(x) : logits, 1).gather(1, labels).squeeze(1);
    conditional = options.log_posterior_only ? w * log_p : lse + w * log_p;
  } else {
    // grad f_y = grad LSE + grad log p(y|x), so LSE + w log p = (1 - w) LSE + w f_y. Written this way,
    // w = 0 and w = 1 reproduce the unconditional and conditional forces exactly.
    auto f_y = logits.gather(1, labels).squeeze(1);
    conditional = w == 1.0 ? f_y : w == 0.0 ? lse : (1.0 - w) * lse + w * f_y;
  }
  if (!options.unconditional.defined()) return conditional;
  const auto mask = options.unconditional.to(logits.device(), torch::kBool).view({-1});
  if (mask.size(0) != logits.size(0)) throw std::invalid_argument("force: the unconditional mask does not match the batch");
  return torch::where(mask, lse, conditional);
}

}  // namespace

torch::Tensor guided_potential(const torch::Tensor &logits, const torch::Tensor &x, const ForceOptions &options) {
  return per_sample_potential(logits, x, options).sum();
}

PotentialGradient potential_gradient(const LogitsFunction &f, const torch::Tensor &x, const ForceOptions &options) {
  if (x.dim() != 4) throw std::invalid_argument("force: expected images [N, C, H, W]");
  // The force is a derivative with respect to this input only; gradients never flow back into x.
  auto input = x.detach().requires_grad_(true);
  auto logits = f(input);
  auto potential = guided_potential(logits, input, options);
  auto grads = torch::autograd::grad({potential}, {input}, /*grad_outputs=*/{},
                                     /*retain_graph=*/options.create_graph, /*create_graph=*/options.create_graph);
  return {grads[0], options.create_graph ? logits : logits.detach()};
}

torch::Tensor Force::noise_estimate() const {
  return std::sqrt(static_cast<double>(direction[0].numel())) * direction;
}

Force force_direction(const LogitsFunction &f, const torch::Tensor &x, const ForceOptions &options) {
  auto [g, logits] = potential_gradient(f, x, options);
  auto norm = g.flatten(1).norm(2, 1).clamp_min(options.epsilon).view({-1, 1, 1, 1});
  return {-g / norm, logits};
}

}  // namespace cff
