#include "robustness.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <torch/torch.h>

#include "cff/energy.h"
#include "cff/ood.h"

namespace cff::eval {
namespace {

using json = nlohmann::json;

// Accuracy is compared between attacks on the same images and seeds; this much is noise, not a finding.
constexpr double kTolerance = 0.01;

struct Outcome {
  torch::Tensor fooled;  // [N] bool
  torch::Tensor logits;  // f at the adversarial images, [N, K]
  double seconds = 0.0;
};

torch::Tensor logits_of(const LogitsFunction &f, const torch::Tensor &x, int64_t batch) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) parts.push_back(f(x.slice(0, i, i + batch)).detach());
  return torch::cat(parts);
}

// Runs `spec` in batches (batch b seeded with spec.seed + b, so a run is reproducible at any batch size
// only if the batch size is kept) and reads the adversarial images with `judge` (f itself, or the
// target of a transfer attack).
Outcome run(const LogitsFunction &f, const LogitsFunction &judge, const torch::Tensor &x, const torch::Tensor &y,
            AttackSpec spec, const RobustnessOptions &o) {
  const auto start = std::chrono::steady_clock::now();
  const uint64_t seed = spec.seed;
  std::vector<torch::Tensor> logits;
  for (int64_t i = 0, b = 0; i < x.size(0); i += o.batch, ++b) {
    spec.seed = seed + static_cast<uint64_t>(b);
    const auto result = attack(f, x.slice(0, i, i + o.batch), y.slice(0, i, i + o.batch), spec, o.scale);
    torch::NoGradGuard no_grad;
    logits.push_back(judge(result.adversarial).detach());
  }
  Outcome out;
  out.logits = torch::cat(logits);
  out.fooled = out.logits.argmax(1) != y;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

double accuracy(const torch::Tensor &fooled) { return 1.0 - fooled.to(torch::kDouble).mean().item<double>(); }

std::vector<double> values(const torch::Tensor &t) {
  auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

json check(const std::string &name, bool pass, const std::string &detail) {
  return {{"check", name}, {"status", pass ? "pass" : "warn"}, {"detail", detail}};
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * v);
  return buf;
}

}  // namespace

json masking_checks(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y, const AttackSpec &spec,
                    const RobustnessOptions &o) {
  json checks = json::array();
  const auto acc = [&](const AttackSpec &s) { return accuracy(run(f, f, x, y, s, o).fooled); };
  const double base = acc(spec);

  // 1. Accuracy falls with eps and is near zero at a large eps (an L-inf eps of 1 lets the attacker paint any image).
  std::vector<std::pair<double, double>> sweep;
  for (double factor : {0.25, 0.5, 1.0, 2.0, 4.0}) {
    AttackSpec s = spec;
    s.eps = spec.kind == AttackKind::pgd_l2 ? spec.eps * factor : std::min(1.0, spec.eps * factor);
    if (!sweep.empty() && s.eps == sweep.back().first) continue;
    sweep.emplace_back(s.eps, factor == 1.0 ? base : acc(s));
  }
  bool monotone = true;
  std::string series;
  for (size_t i = 0; i < sweep.size(); ++i) {
    if (i > 0 && sweep[i].second > sweep[i - 1].second + kTolerance) monotone = false;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s%g: %s", i ? ", " : "", sweep[i].first, percent(sweep[i].second).c_str());
    series += buf;
  }
  checks.push_back(check("accuracy falls as eps grows", monotone, "eps " + series));
  checks.push_back(check("accuracy reaches 10% or less at the largest eps", sweep.back().second <= 0.10,
                         percent(sweep.back().second) + " at eps " + std::to_string(sweep.back().first)));

  // 2. More steps or restarts never help the defender.
  if (spec.kind != AttackKind::fgsm) {
    AttackSpec longer = spec, restarted = spec;
    longer.steps *= 2;
    restarted.restarts *= 2;
    const double a_steps = acc(longer), a_restarts = acc(restarted);
    checks.push_back(check("more steps do not raise accuracy", a_steps <= base + kTolerance,
                           percent(base) + " at " + std::to_string(spec.steps) + " steps, " + percent(a_steps) + " at " +
                               std::to_string(longer.steps)));
    checks.push_back(check("more restarts do not raise accuracy", a_restarts <= base + kTolerance,
                           percent(base) + " at " + std::to_string(spec.restarts) + " restarts, " + percent(a_restarts) +
                               " at " + std::to_string(restarted.restarts)));
  }
  // 3. One step is no stronger than many.
  if (spec.kind != AttackKind::fgsm && spec.kind != AttackKind::pgd_l2) {
    AttackSpec fgsm;
    fgsm.kind = AttackKind::fgsm;
    fgsm.steps = 1;
    fgsm.eps = spec.eps;
    const double a_fgsm = acc(fgsm);
    checks.push_back(check("FGSM is no stronger than the iterative attack", a_fgsm >= base - kTolerance,
                           "FGSM " + percent(a_fgsm) + ", " + attack_kind_name(spec.kind) + " " + percent(base)));
  }
  // 4. A black-box transfer from another model is no stronger than the white-box attack.
  if (o.transfer) {
    const double a_transfer = accuracy(run(o.transfer, f, x, y, spec, o).fooled);
    checks.push_back(check("transfer from " + o.transfer_name + " is no stronger than white-box",
                           a_transfer >= base - kTolerance,
                           "transfer " + percent(a_transfer) + ", white-box " + percent(base)));
  }
  // 5. The loss has an input gradient at (almost) every image.
  {
    torch::AutoGradMode enable(true);
    auto point = x.detach().clone().requires_grad_(true);
    const auto loss = attack_loss(f(point), y, torch::Tensor(), AttackLoss::ce).sum();
    const auto gradient = torch::autograd::grad({loss}, {point})[0];
    const double zero = (gradient.flatten(1).abs().amax(1) == 0).to(torch::kDouble).mean().item<double>();
    checks.push_back(check("input gradients are non-zero", zero <= 0.01, percent(zero) + " of images have a zero gradient"));
  }
  return checks;
}

json robustness(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y,
                const std::vector<std::string> &labels, const RobustnessOptions &o,
                const std::function<void(const std::string &)> &progress) {
  const auto say = [&](const std::string &line) {
    if (progress) progress(line);
  };
  const auto clean_logits = logits_of(f, x, o.batch);
  const auto clean_correct = clean_logits.argmax(1) == y;
  const auto clean_energy = free_energy(clean_logits);
  const int64_t k = clean_logits.size(1);
  json attacks = json::array();
  auto robust_everywhere = clean_correct.clone();
  for (const auto &spec : o.attacks) {
    say("robustness: " + spec.to_string() + " on " + std::to_string(x.size(0)) + " images");
    const auto out = run(f, f, x, y, spec, o);
    robust_everywhere &= ~out.fooled;
    json per_class = json::array();
    for (int64_t c = 0; c < k; ++c) {
      const auto mask = y == c;
      const int64_t n = mask.sum().item<int64_t>();
      per_class.push_back({{"label", c < static_cast<int64_t>(labels.size()) ? labels[static_cast<size_t>(c)] : std::to_string(c)},
                           {"images", n},
                           {"accuracy", n ? accuracy(out.fooled.masked_select(mask)) : 0.0}});
    }
    const auto energy = free_energy(out.logits);
    const auto shift = (energy - clean_energy).to(torch::kDouble);
    json e = {{"mean_shift", shift.mean().item<double>()},
              {"median_shift", shift.median().item<double>()},
              {"share_lowered", (shift < 0).to(torch::kDouble).mean().item<double>()},
              {"auroc_clean_vs_adversarial", auroc(values(clean_energy), values(energy))}};
    if (o.energy_threshold) {
      const auto flagged = energy > *o.energy_threshold;
      const auto broken = out.fooled & clean_correct;
      e["flagged"] = flagged.to(torch::kDouble).mean().item<double>();
      e["clean_flagged"] = (clean_energy > *o.energy_threshold).to(torch::kDouble).mean().item<double>();
      // What the alarm is worth: images the attack turned from right to wrong without tripping it.
      e["fooled_and_unflagged"] = (broken & ~flagged).to(torch::kDouble).mean().item<double>();
      e["threshold"] = *o.energy_threshold;
    }
    attacks.push_back({{"attack", spec.to_string()},
                       {"accuracy", accuracy(out.fooled)},
                       {"per_class", per_class},
                       {"energy", e},
                       {"seconds", out.seconds}});
  }
  json summary = {{"images", x.size(0)},
                  {"clean_accuracy", clean_correct.to(torch::kDouble).mean().item<double>()},
                  {"attacks", attacks},
                  {"worst_case_accuracy", robust_everywhere.to(torch::kDouble).mean().item<double>()}};
  if (!o.attacks.empty()) {
    // The checks vary the first L-inf attack (else the first one).
    AttackSpec varied = o.attacks.front();
    for (const auto &spec : o.attacks) {
      if (spec.kind == AttackKind::pgd_linf || spec.kind == AttackKind::apgd_ce) {
        varied = spec;
        break;
      }
    }
    const int64_t n = std::min<int64_t>(o.check_images, x.size(0));
    say("robustness: gradient-masking checks on " + std::to_string(n) + " images, varying " + varied.to_string());
    summary["masking_checks"] = masking_checks(f, x.slice(0, 0, n), y.slice(0, 0, n), varied, o);
    summary["masking_checks_attack"] = varied.to_string();
  }
  return summary;
}

}  // namespace cff::eval
