// Energies and forces of a classifier seen as a Central Force Field (docs/method.md "Energy and force"; [CFF]).
//
// All functions are batched: x is [N, C, H, W], results are per sample. They run on whatever device
// x and the network live on. They need autograd with respect to x, so never call them under
// torch::InferenceMode or NoGradGuard.
#pragma once

#include <functional>

#include <torch/types.h>

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

// Anything that maps images [N, C, H, W] to logits [N, K]: a native Classifier, an imported
// TorchScript module, a lambda in a test.
using LogitsFunction = std::function<torch::Tensor(const torch::Tensor &)>;

// U(x) = -logsumexp_y f(x)[y], the free energy: higher means less like the training data. [N]
torch::Tensor free_energy(const torch::Tensor &logits);

// p(y|x) = softmax(f(x)). [N, K]
torch::Tensor class_posterior(const torch::Tensor &logits);

struct ForceOptions {
  // Requested class per sample ([N], int64). Undefined: the unconditional force.
  torch::Tensor labels;
  // Samples that take the unconditional force although they have a label ([N], bool; undefined: none).
  // Training draws these with probability p_uncond, so one batch mixes both kinds.
  torch::Tensor unconditional;
  // Guidance scale w: the potential is LSE + w log p(y|x), whose gradient is grad LSE + w grad log p(y|x).
  // w = 0 is unconditional, w = 1 is the paper's conditional force grad f_y. Ignored without labels.
  double guidance = 1.0;
  // Optional second classifier for decoupled guidance: log p(y|x) comes from it instead of f.
  LogitsFunction guide;
  // The potential is w log p(y|x) alone, without LSE: the normalised gradient-ascent baseline of [COMs]
  // (docs/method.md "Sampling"). Needs labels; without them the potential stays LSE.
  bool log_posterior_only = false;
  // Keep the graph so the direction can be differentiated again (training).
  bool create_graph = false;
  // Guards the normalisation: u = -g / max(||g||, epsilon).
  double epsilon = 1e-12;
};

// The input gradient g = grad_x P(x) of the (guided) potential, summed over the batch, and the logits of
// the same forward pass. The logits keep their graph only with create_graph.
struct PotentialGradient {
  torch::Tensor gradient;  // [N, C, H, W]
  torch::Tensor logits;    // f(x), [N, K]
};
PotentialGradient potential_gradient(const LogitsFunction &f, const torch::Tensor &x, const ForceOptions &options = {});

struct Force {
  torch::Tensor direction;  // u(x) = -g/||g||, [N, C, H, W], unit L2 norm per sample
  torch::Tensor logits;     // f(x), [N, K] (a by-product of the same forward pass)
  // eps_hat = sqrt(d) * u, d = C*H*W: the estimate of the noise eps in x_t (paper eq. 16) that training
  // matches and the samplers step with.
  torch::Tensor noise_estimate() const;
};

// The unit force direction: the one force of the library, used by training, sampling and denoising.
// It points away from the data (up the energy), so sqrt(d) * direction estimates the noise epsilon in x_t.
Force force_direction(const LogitsFunction &f, const torch::Tensor &x, const ForceOptions &options = {});

// The scalar whose input-gradient gives the (guided) force, summed over the batch: per sample LSE without
// labels (or where `unconditional` is set), else LSE + w log p(y|x) with log p from the guide or from f
// (without a guide this is (1 - w) LSE + w f_y), or w log p(y|x) alone with log_posterior_only.
// Exposed for tests (finite differences).
torch::Tensor guided_potential(const torch::Tensor &logits, const torch::Tensor &x, const ForceOptions &options);

}  // namespace cff
#pragma GCC visibility pop
