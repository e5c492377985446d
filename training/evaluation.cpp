#include "evaluation.h"

#include <torch/torch.h>

#include "cff/ood.h"
#include "cff/sampler.h"
#include "datasets.h"

namespace cff::data {

torch::Tensor batched_logits(const LogitsFunction &f, const torch::Tensor &x, const c10::Device &device, int64_t batch) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) {
    parts.push_back(f(x.slice(0, i, std::min(i + batch, x.size(0))).to(device)).to(torch::kCPU));
  }
  return torch::cat(parts);
}

double accuracy(const torch::Tensor &logits, const torch::Tensor &labels) {
  return logits.argmax(1).eq(labels.to(logits.device())).to(torch::kDouble).mean().item<double>();
}

torch::Tensor make_ood_set(const std::string &name, const torch::Tensor &x, int64_t n, uint64_t seed) {
  n = std::min(n, x.size(0));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto base = x.slice(0, 0, n);
  if (name == "uniform") return torch::rand(base.sizes(), gen) * 2 - 1;
  if (name == "gaussian") return (torch::randn(base.sizes(), gen) * 0.5).clamp(-1, 1);
  if (name == "inverted") return -base;
  if (name == "vflip") return base.flip({2});
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
