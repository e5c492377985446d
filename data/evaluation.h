// Evaluation shared by cff-train and the tools: accuracy, OOD sets and scores, sample grids.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "cff/energy.h"
#include "cff/model_file.h"
#include "cff/ood.h"
#include "cff/schedule.h"

namespace cff::data {

// f(x) over a large set in batches, without autograd. x: float [N, C, H, W]; returns [N, K] on the CPU.
torch::Tensor batched_logits(const LogitsFunction &f, const torch::Tensor &x, const c10::Device &device,
                             int64_t batch = 500);

double accuracy(const torch::Tensor &logits, const torch::Tensor &labels);

// Model::ood_inputs over a large set in batches (CPU tensors).
OodInputs batched_ood_inputs(const Model &model, const torch::Tensor &x, int64_t batch = 500, bool everything = false);

// Built-in OOD sets, made at run time from in-distribution test images x (float, [-1, 1]) or drawn:
//   far:  "uniform" (uniform noise), "gaussian" (N(0, 0.5^2), clipped), "inverted" (-x), "vflip" (upside down);
//   near: "constant" (one random level or colour per frame), "low-contrast" (x at 30% contrast around its
//         mean), "blur" (x blurred, Gaussian sigma = H/14, at least 1.5 px), "glyphs" (letters, digits and
//         symbols in OpenCV's Hershey fonts with size, position, slant and stroke jitter; needs OpenCV).
// Any other name is read as a dataset folder (IDX, CIFAR-10 or image folder; its test split) and
// resized to x's shape. Returns at most n images.
torch::Tensor make_ood_set(const std::string &name, const torch::Tensor &x, int64_t n, uint64_t seed);

// The built-in names above, far sets first.
const std::vector<std::string> &builtin_ood_sets();
bool is_builtin_ood_set(const std::string &name);
// The name a set is reported under: a built-in's own name; for a folder or file its last path
// component, with the folder above when that is only a split name ("digits/test", not "test").
std::string ood_set_label(const std::string &name);

struct OodScores {
  double energy_auroc = 0, energy_fpr95 = 0, msp_auroc = 0;
  nlohmann::json to_json() const;
};

OodScores score_ood(const torch::Tensor &in_logits, const torch::Tensor &out_logits);

// One row of `per_class` conditional centripetal samples for each class. [K * per_class, C, H, W]
torch::Tensor class_samples(const LogitsFunction &f, const CosineSchedule &schedule, int64_t num_classes,
                            int64_t per_class, c10::IntArrayRef chw, int64_t steps, uint64_t seed,
                            const c10::Device &device);

}  // namespace cff::data
