#include "cff/energy.h"

#include <stdexcept>

#include <torch/autograd.h>

namespace cff {

torch::Tensor free_energy(const torch::Tensor &logits) { return -torch::logsumexp(logits, 1); }

torch::Tensor class_posterior(const torch::Tensor &logits) { return torch::softmax(logits, 1); }

torch::Tensor guided_potential(const torch::Tensor &logits, const torch::Tensor &x, const ForceOptions &options) {
  auto lse = torch::logsumexp(logits, 1);
  if (!options.labels.defined()) return lse.sum();
  const auto labels = options.labels.to(logits.device(), torch::kLong).view({-1, 1});
  if (labels.size(0) != logits.size(0)) {
    throw std::invalid_argument("force: " + std::to_string(labels.size(0)) + " labels for a batch of " +
                                std::to_string(logits.size(0)));
  }
  const double w = options.guidance;
  if (options.guide) {
    auto guide_logits = options.guide(x);
    auto log_p = torch::log_softmax(guide_logits, 1).gather(1, labels).squeeze(1);
    return (lse + w * log_p).sum();
  }
  // grad f_y = grad LSE + grad log p(y|x), so LSE + w log p = (1 - w) LSE + w f_y. Written this way,
  // w = 0 and w = 1 reproduce the unconditional and conditional forces exactly.
  auto f_y = logits.gather(1, labels).squeeze(1);
  if (w == 1.0) return f_y.sum();
  if (w == 0.0) return lse.sum();
  return ((1.0 - w) * lse + w * f_y).sum();
}

Force force_direction(const LogitsFunction &f, const torch::Tensor &x, const ForceOptions &options) {
  if (x.dim() != 4) throw std::invalid_argument("force: expected images [N, C, H, W]");
  // The force is a derivative with respect to this input only; gradients never flow back into x.
  auto input = x.detach().requires_grad_(true);
  auto logits = f(input);
  auto potential = guided_potential(logits, input, options);
  auto grads = torch::autograd::grad({potential}, {input}, /*grad_outputs=*/{},
                                     /*retain_graph=*/options.create_graph, /*create_graph=*/options.create_graph);
  auto g = grads[0];
  auto norm = g.flatten(1).norm(2, 1).clamp_min(options.epsilon).view({-1, 1, 1, 1});
  Force force;
  force.direction = -g / norm;
  force.logits = options.create_graph ? logits : logits.detach();
  return force;
}

}  // namespace cff
