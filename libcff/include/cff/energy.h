// Energies and forces of a classifier seen as a Central Force Field (METHOD.md).
//
// All functions are batched: x is [N, C, H, W], results are per sample. They run on whatever device
// x and the network live on. They need autograd with respect to x, so never call them under
// torch::InferenceMode or NoGradGuard.
#pragma once

#include <functional>

#include <torch/types.h>

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
  // Guidance scale w: g = grad LSE + w * grad log p(y|x). w = 0 is unconditional,
  // w = 1 is the paper's conditional force grad f_y. Ignored without labels.
  double guidance = 1.0;
  // Optional second classifier for decoupled guidance: log p(y|x) comes from it instead of f.
  LogitsFunction guide;
  // Keep the graph so the direction can be differentiated again (training).
  bool create_graph = false;
  // Guards the normalisation: u = -g / max(||g||, epsilon).
  double epsilon = 1e-12;
};

struct Force {
  torch::Tensor direction;  // u(x) = -g/||g||, [N, C, H, W], unit L2 norm per sample
  torch::Tensor logits;     // f(x), [N, K] (a by-product of the same forward pass)
};

// The unit force direction. It points away from the data (up the energy), so
// sqrt(d) * direction estimates the noise epsilon in x_t (paper eq. 16).
Force force_direction(const LogitsFunction &f, const torch::Tensor &x, const ForceOptions &options = {});

// The scalar whose input-gradient gives the (guided) force, summed over the batch:
// sum_i [ (1-w) LSE_i + w f_{y_i} ] (no guide) or sum_i [ LSE_i + w log p_guide(y_i|x_i) ].
// Exposed for tests (finite differences) and for the loss.
torch::Tensor guided_potential(const torch::Tensor &logits, const torch::Tensor &x, const ForceOptions &options);

}  // namespace cff
