// White-box adversarial attacks on a classifier f(x), for measuring robustness as the field does:
// FGSM, PGD (L-infinity and L2; Madry et al. 2018) and APGD (Croce & Hein 2020, the core of AutoAttack:
// momentum, step-size halving at checkpoints, the DLR loss; APGD-CE untargeted, APGD-T targeted DLR).
//
// The radius is in pixel units, images scaled to [0, 1] per channel, as published figures give it
// (Fashion-MNIST L-inf eps = 0.1); the model's normalisation (x = (p - mean) / std) converts between the
// two. Every adversarial image stays inside the eps-ball around its clean image and inside [0, 1].
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <c10/util/Optional.h>
#include <torch/types.h>

#include "cff/energy.h"

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

enum class AttackKind { fgsm, pgd_linf, pgd_l2, apgd_ce, apgd_t };

// What the attacker maximises per image (untargeted) or, with a target class t, minimises the distance to:
//   ce      cross-entropy of the true class (targeted: minus the CE of t);
//   margin  max_{i != y} f_i - f_y, the Carlini-Wagner margin (targeted: f_t - max_{i != t} f_i);
//   dlr     the difference of logits ratio of Croce & Hein, -(f_y - max_{i != y} f_i) / (f_pi1 - f_pi3),
//           invariant to the logits' scale (targeted: -(f_y - f_t) / (f_pi1 - (f_pi3 + f_pi4) / 2)).
enum class AttackLoss { ce, margin, dlr };

struct AttackSpec {
  AttackKind kind = AttackKind::pgd_linf;
  double eps = 0.1;          // radius in [0, 1] pixel units: L-inf (fgsm, pgd-linf, apgd-*) or L2 (pgd-l2)
  int64_t steps = 20;        // iterations per restart (fgsm: 1)
  int64_t restarts = 1;      // runs: pgd's first starts at the clean image, the others at random points of
                             // the ball; apgd-*: random starts; apgd-t: one run per runner-up class of the clean logits
  AttackLoss loss = AttackLoss::ce;  // apgd-ce uses ce, apgd-t the targeted dlr
  bool random_target = false;        // pgd: a random wrong class per image, instead of untargeted
  // Adaptive attack against the energy alarm: the objective also rewards a low free energy,
  // loss + energy_weight * (-U(x)), so the adversarial image stays below the OOD threshold.
  double energy_weight = 0.0;
  uint64_t seed = 0;

  // "pgd-linf:eps=0.1,steps=20,restarts=1,loss=ce,target=none,energy=0,seed=0"; fields other than the kind
  // are optional. Throws std::invalid_argument naming the bad part.
  static AttackSpec parse(const std::string &text);
  std::string to_string() const;  // the same form, every field
  void validate() const;          // throws std::invalid_argument
};

std::string attack_kind_name(AttackKind kind);
std::string attack_loss_name(AttackLoss loss);

// The model's input normalisation, per channel: x = (p - mean) / std for pixels p in [0, 1].
struct PixelScale {
  std::vector<double> mean = {0.5};
  std::vector<double> std = {0.5};
};

struct AttackResult {
  torch::Tensor adversarial;  // [N, C, H, W] model inputs: the first point found that fools f, else the
                              // point of highest loss (for the adaptive attack: fooled and below the clean energy if found)
  torch::Tensor fooled;       // [N] bool: argmax f(adversarial) != y
};

// Attacks images x ([N, C, H, W] model inputs) with labels y ([N] int64). No parameter gradients are
// taken: f may be frozen. Deterministic for a given spec.seed.
AttackResult attack(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y, const AttackSpec &spec,
                    const PixelScale &scale);

// The rows of a global batch that one process of a data-parallel run holds: rows index, index + count,
// index + 2 count, ... of a batch of `global` rows (global 0: the tensor is the whole batch). The training
// losses (cff/loss.h) and training_adversary make their random draws for the global batch and take their
// means over it, so the terms of all processes sum to the whole batch's and training gives the same result
// at any number of processes. `sum_across` sums a tensor over the processes (for a batch statistic such as
// WEAT's mean weight); unset, there is one process.
struct BatchShard {
  int64_t index = 0, count = 1, global = 0;
  std::function<torch::Tensor(const torch::Tensor &)> sum_across;
  // The global batch's size for a local tensor of `local` rows; throws std::invalid_argument when the
  // shard does not describe `local` rows.
  int64_t global_rows(int64_t local) const;
  // The global rows [0, n) this shard holds, as a slice of a tensor drawn for n rows.
  torch::Tensor rows_of(const torch::Tensor &drawn_for_global_rows, int64_t n) const;
};

// Adversarial examples for robust training, in model inputs: `steps` sign steps of `step_size` (pixel units)
// inside the L-inf eps-ball and [0, 1], ascending CE(f(x*), y) from a uniform point of the ball (PGD,
// Madry et al. 2018; kl = false) or KL(p(.|x) || p(.|x*)) from x + 0.001 N(0, I) (TRADES, Zhang et al.
// 2019; kl = true, y unused). Random draws on the CPU from `generator` (then moved to x's device). Only
// input gradients are taken: f's parameters keep no gradient from this.
torch::Tensor training_adversary(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y, bool kl,
                                 double eps, int64_t steps, double step_size, const PixelScale &scale,
                                 c10::optional<at::Generator> generator = c10::nullopt, const BatchShard &shard = {});

// The per-image loss an attack maximises (exposed for tests), on logits [N, K]; targets [N] or undefined.
torch::Tensor attack_loss(const torch::Tensor &logits, const torch::Tensor &y, const torch::Tensor &targets,
                          AttackLoss loss);

}  // namespace cff
#pragma GCC visibility pop
