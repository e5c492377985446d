// The CFF training loss (docs/method.md "Training loss"): cross-entropy plus force matching.
#pragma once

#include <ATen/core/Generator.h>
#include <c10/util/Optional.h>
#include <torch/types.h>

#include <string>

#include "cff/attack.h"
#include "cff/energy.h"
#include "cff/schedule.h"

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

struct CffLossOptions {
  double beta = 1.0;      // weight of the force-matching term
  double gamma = 1.0;     // weight of CE on the noised images x_t (0 = the paper-literal recipe)
  double p_uncond = 0.2;  // probability of matching the unconditional direction u(x_t) instead of u(x_t, y)
  // Share of each batch that also gets a noised copy x_t for the force and noisy-CE terms (the first
  // round(r * N) images; the batch is shuffled, so they are a random subset). 1 = every image, as in the
  // paper. Measured cost per step, in forward passes of the batch: clean CE ~3, noised part ~9 * r
  // (forward, input gradient with create_graph, and the double backward), so r = 0.5 halves the extra cost.
  double force_fraction = 1.0;
  // Energy-margin term on outliers the loss makes itself (Liu et al. 2020, "Energy-based out-of-distribution
  // detection"): margin_weight * (mean relu(U(x0) - margin_in)^2 + mean relu(margin_out - U(x_out))^2), where
  // x_out are the clean images with the cells of a 4 x 4 grid shuffled (one permutation per batch, never
  // the identity). It pushes the free energy of the data below margin_in and that of the shuffled images
  // above margin_out. 0 = off (the recipe). It is part of cff_loss only: cff-train applies it once the
  // force terms have joined (after the CE-first warm-up) and refuses it with --objective ce. Margins in
  // energy units; U of the shipped model's data is ~-24.
  double margin_weight = 0.0;
  double margin_in = -25.0;
  double margin_out = -7.0;
};

struct CffLossTerms {
  torch::Tensor total;          // ce_clean + gamma * ce_noisy + beta * force (scalar, differentiable)
  torch::Tensor ce_clean;       // CE(f(x_0), y)
  torch::Tensor ce_noisy;       // CE(f(x_t), y)
  torch::Tensor force;          // mean ||sqrt(d) u(x_t) - eps||^2 / d
  torch::Tensor margin;         // the energy-margin term before its weight (detached; 0 when off)
  torch::Tensor logits_clean;   // f(x_0), detached, for accuracy bookkeeping
};

// One step's loss on a batch of clean images x0 [N, C, H, W] in [-1, 1] and labels y [N] (int64).
// t is drawn uniformly from {1..T}, eps ~ N(0, I). Random draws use `generator` when given
// (a CPU generator; draws are made on the CPU and moved to x0's device, so a seed gives the same
// batch on every device), else LibTorch's default CPU generator. With a `shard` (cff/attack.h), x0 and y
// are one process's rows of a global batch: the draws are the global batch's, the noised rows are the
// global batch's first force_fraction, and every mean is over the global batch, so the terms are this
// shard's share and sum over the shards to the whole batch's.
CffLossTerms cff_loss(const LogitsFunction &f, const torch::Tensor &x0, const torch::Tensor &y,
                      const CosineSchedule &schedule, const CffLossOptions &options,
                      c10::optional<at::Generator> generator = c10::nullopt, const BatchShard &shard = {});

// The outliers of the energy-margin term: each image's 4 x 4 grid of cells (H/4 x W/4 pixels each; any
// remainder rows and columns stay in place) rearranged by one random permutation that is not the identity.
torch::Tensor shuffled_patches(const torch::Tensor &x, c10::optional<at::Generator> generator = c10::nullopt);

// Robust training terms, added to the objective's loss (whose clean CE and, for cff, force terms stay, so a
// robust model still generates and denoises). x* comes from training_adversary (cff/attack.h):
//   pgd     CE(f(x*), y), x* from PGD on CE (Madry et al. 2018);
//   trades  beta * KL(p(.|x) || p(.|x*)), x* from ascent on that KL (Zhang et al. 2019);
//   weat    mean_i w_i (CE(f(x*_i), y_i) + beta KL_i), x* as for trades, with w_i = 1 / log(1 + exp(|U(x_i)|))
//           on the clean free energy, detached and divided by its batch mean (Mirza et al., seed 002: only
//           relative weights matter, and cff's |U| of ~25 would otherwise scale the terms down ~25x).
struct RobustLossOptions {
  std::string mode = "none";  // none | pgd | trades | weat
  double eps = 0.1;           // L-inf radius in [0, 1] pixel units
  int64_t steps = 10;         // attack steps per training step (each costs about one forward and backward pass)
  double step_size = 0.0;     // pixel units; 0 = eps / 4
  double beta = 6.0;          // the KL weight of trades and weat
  PixelScale scale;           // the inputs' normalisation
  void validate() const;      // throws std::invalid_argument naming the field
};

struct RobustTerms {
  torch::Tensor total;               // the term to add (scalar, differentiable)
  torch::Tensor logits_adversarial;  // f(x*), detached, for bookkeeping
};

// The robust term for a batch (mode must not be none). Random draws and `shard` as in cff_loss.
RobustTerms robust_loss(const LogitsFunction &f, const torch::Tensor &x0, const torch::Tensor &y,
                        const RobustLossOptions &options, c10::optional<at::Generator> generator = c10::nullopt,
                        const BatchShard &shard = {});

// The per-image WEAT weights: 1 / log(1 + exp(|U|)) for free energies U [N], divided by their mean.
torch::Tensor weat_weights(const torch::Tensor &energy);

// Plain cross-entropy on clean images: the `ce` baseline objective. Same struct, other terms zero.
CffLossTerms cross_entropy_loss(const LogitsFunction &f, const torch::Tensor &x0, const torch::Tensor &y,
                                const BatchShard &shard = {});

}  // namespace cff
#pragma GCC visibility pop
