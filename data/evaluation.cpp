#include "data/evaluation.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "cff/ood.h"
#include "cff/sampler.h"
#include "data/datasets.h"

namespace cff::data {

torch::Tensor batched_logits(const LogitsFunction &f, const torch::Tensor &x, const c10::Device &device, int64_t batch) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) {
    parts.push_back(f(x.slice(0, i, std::min(i + batch, x.size(0))).to(device)).to(torch::kCPU));
  }
  return torch::cat(parts);
}

OodInputs batched_ood_inputs(const Model &model, const torch::Tensor &x, int64_t batch, bool everything) {
  std::vector<OodInputs> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) {
    parts.push_back(model.ood_inputs(x.slice(0, i, std::min(i + batch, x.size(0))), everything));
  }
  auto join = [&parts](torch::Tensor OodInputs::*field) {
    std::vector<torch::Tensor> pieces;
    for (const auto &p : parts) {
      if (!(p.*field).defined()) return torch::Tensor();
      pieces.push_back(p.*field);
    }
    return pieces.empty() ? torch::Tensor() : torch::cat(pieces);
  };
  return {join(&OodInputs::logits), join(&OodInputs::penultimate), join(&OodInputs::moments),
          join(&OodInputs::complexity)};
}

double accuracy(const torch::Tensor &logits, const torch::Tensor &labels) {
  return logits.argmax(1).eq(labels.to(logits.device())).to(torch::kDouble).mean().item<double>();
}

const std::vector<std::string> &builtin_ood_sets() {
  static const std::vector<std::string> names = {"uniform", "gaussian", "inverted", "vflip",
                                                 "constant", "low-contrast", "blur", "glyphs"};
  return names;
}

bool is_builtin_ood_set(const std::string &name) {
  const auto &names = builtin_ood_sets();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string ood_set_label(const std::string &name) {
  if (is_builtin_ood_set(name)) return name;
  auto path = std::filesystem::path(name).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();  // a trailing slash
  const std::string last = path.filename().string();
  static const std::set<std::string> splits = {"test", "train", "val", "valid", "validation"};
  if (splits.count(last) && path.has_parent_path() && !path.parent_path().filename().empty()) {
    return path.parent_path().filename().string() + "/" + last;
  }
  return last.empty() ? name : last;
}

namespace {

// Depthwise Gaussian blur of [N, C, H, W] with edge replication.
torch::Tensor gaussian_blur(const torch::Tensor &x, double sigma) {
  const int64_t radius = static_cast<int64_t>(std::ceil(3 * sigma));
  auto taps = torch::arange(-radius, radius + 1, torch::kFloat32);
  auto kernel = torch::exp(-taps.pow(2) / (2 * sigma * sigma));
  kernel = kernel / kernel.sum();
  const int64_t c = x.size(1);
  auto padded = torch::replication_pad2d(x, {radius, radius, radius, radius});
  const std::vector<int64_t> one = {1, 1}, none = {0, 0};
  const c10::optional<torch::Tensor> no_bias;
  auto rows = torch::conv2d(padded, kernel.view({1, 1, 1, -1}).repeat({c, 1, 1, 1}), no_bias, one, none, one, c);
  return torch::conv2d(rows, kernel.view({1, 1, -1, 1}).repeat({c, 1, 1, 1}), no_bias, one, none, one, c);
}

}  // namespace

torch::Tensor make_ood_set(const std::string &name, const torch::Tensor &x, int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  if (name == "glyphs") {
    return render_glyphs(n, x.size(1), x.size(2), x.size(3), seed).to(torch::kFloat32).div(127.5).sub(1.0);
  }
  n = std::min(n, x.size(0));
  auto base = x.slice(0, 0, n);
  if (name == "uniform") return torch::rand(base.sizes(), gen) * 2 - 1;
  if (name == "gaussian") return (torch::randn(base.sizes(), gen) * 0.5).clamp(-1, 1);
  if (name == "inverted") return -base;
  if (name == "vflip") return base.flip({2});
  if (name == "constant") return (torch::rand({n, x.size(1), 1, 1}, gen) * 2 - 1).expand(base.sizes()).contiguous();
  if (name == "low-contrast") {
    auto mean = base.mean({1, 2, 3}, /*keepdim=*/true);
    return mean + 0.3 * (base - mean);
  }
  if (name == "blur") return gaussian_blur(base, std::max(1.5, static_cast<double>(x.size(2)) / 14.0));
  auto other = load_dataset(name, "test", x.size(1), x.size(2), x.size(3));
  auto images = other.images;
  if (images.size(1) != x.size(1) || images.size(2) != x.size(2) || images.size(3) != x.size(3)) {
    throw DatasetError(name + ": images are " + std::to_string(images.size(1)) + "x" + std::to_string(images.size(2)) +
                       "x" + std::to_string(images.size(3)) + ", the model needs " + std::to_string(x.size(1)) + "x" +
                       std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
  }
  auto perm = torch::randperm(images.size(0), gen).slice(0, 0, std::min<int64_t>(n, images.size(0)));
  return images.index_select(0, perm).to(torch::kFloat32).div(127.5).sub(1.0);
}

nlohmann::json OodScores::to_json() const {
  return {{"energy_auroc", energy_auroc}, {"energy_fpr95", energy_fpr95}, {"msp_auroc", msp_auroc}};
}

OodScores score_ood(const torch::Tensor &in_logits, const torch::Tensor &out_logits) {
  OodScores s;
  const auto in_energy = to_vector(free_energy(in_logits)), out_energy = to_vector(free_energy(out_logits));
  s.energy_auroc = auroc(in_energy, out_energy);
  s.energy_fpr95 = fpr_at_tpr(in_energy, out_energy, 0.95);
  s.msp_auroc = auroc(to_vector(max_softmax_score(in_logits)), to_vector(max_softmax_score(out_logits)));
  return s;
}

torch::Tensor class_samples(const LogitsFunction &f, const CosineSchedule &schedule, int64_t num_classes,
                            int64_t per_class, c10::IntArrayRef chw, int64_t steps, uint64_t seed,
                            const c10::Device &device) {
  CentripetalOptions options;
  options.steps = steps;
  options.seed = seed;
  options.labels = torch::arange(num_classes, torch::kLong).repeat_interleave(per_class).to(device);
  return sample_centripetal(f, schedule, num_classes * per_class, chw, options, device).to(torch::kCPU);
}

}  // namespace cff::data
