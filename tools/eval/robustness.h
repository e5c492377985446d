// cff-eval's robustness part: white-box attacks (cff/attack.h) on test images, the accuracy left under
// each (overall, per class, and the worst case over all attacks per image), what the attacks do to the
// free energy the OOD alarm reads, and the gradient-masking checks of Carlini et al. (2019) and
// Croce & Hein (2020), each reported as pass or warn.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "cff/attack.h"

namespace cff::eval {

struct RobustnessOptions {
  std::vector<AttackSpec> attacks;  // in order; the first L-inf one is the one the checks vary
  PixelScale scale;                 // the model's normalisation
  std::optional<double> energy_threshold;  // the model's energy threshold: U above it is flagged
  int64_t check_images = 200;       // images the masking checks attack (the first ones)
  int64_t batch = 100;              // images per attack call
  LogitsFunction transfer;          // optional: a second model whose adversarial images are tried on f
  std::string transfer_name;
};

// x: model inputs [N, C, H, W], y: labels [N]. Progress lines go to `progress` (may be empty).
nlohmann::json robustness(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y,
                          const std::vector<std::string> &labels, const RobustnessOptions &options,
                          const std::function<void(const std::string &)> &progress = {});

// The masking checks alone (robustness() runs them too): eps sweep monotone and <= 10% at the largest eps,
// more steps and restarts never raise accuracy, FGSM >= PGD, transfer >= white-box (when a transfer model
// is given), non-zero input gradients. Returns an array of {check, status: "pass"|"warn", detail}.
nlohmann::json masking_checks(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y,
                              const AttackSpec &spec, const RobustnessOptions &options);

}  // namespace cff::eval
