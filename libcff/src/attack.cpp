#include "cff/attack.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>
#include <torch/nn/functional/loss.h>

namespace cff {
namespace {

const std::vector<std::pair<AttackKind, std::string>> &kind_names() {
  static const std::vector<std::pair<AttackKind, std::string>> names = {{AttackKind::fgsm, "fgsm"},
                                                                        {AttackKind::pgd_linf, "pgd-linf"},
                                                                        {AttackKind::pgd_l2, "pgd-l2"},
                                                                        {AttackKind::apgd_ce, "apgd-ce"},
                                                                        {AttackKind::apgd_t, "apgd-t"}};
  return names;
}

const std::vector<std::pair<AttackLoss, std::string>> &loss_names() {
  static const std::vector<std::pair<AttackLoss, std::string>> names = {
      {AttackLoss::ce, "ce"}, {AttackLoss::margin, "margin"}, {AttackLoss::dlr, "dlr"}};
  return names;
}

double parse_number(const std::string &key, const std::string &value) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (used != value.size() || value.empty()) throw std::invalid_argument("attack: " + key + "='" + value + "' is not a number");
  return v;
}

int64_t parse_count(const std::string &key, const std::string &value) {
  const double v = parse_number(key, value);
  if (v != std::floor(v) || v < 0 || v > 1e9) throw std::invalid_argument("attack: " + key + "='" + value + "' is not a count");
  return static_cast<int64_t>(v);
}

// The largest logit other than the one of `exclude` ([N] classes), per row.
torch::Tensor max_other(const torch::Tensor &logits, const torch::Tensor &exclude) {
  auto mask = torch::zeros_like(logits, torch::kBool).scatter_(1, exclude.unsqueeze(1), true);
  return logits.masked_fill(mask, -std::numeric_limits<float>::infinity()).amax(1);
}

torch::Tensor gather(const torch::Tensor &logits, const torch::Tensor &classes) {
  return logits.gather(1, classes.unsqueeze(1)).squeeze(1);
}

// Broadcasts per-channel values to [1, C, 1, 1].
torch::Tensor per_channel(const std::vector<double> &values, int64_t channels, const torch::Tensor &like) {
  if (values.size() != 1 && static_cast<int64_t>(values.size()) != channels) {
    throw std::invalid_argument("attack: the normalisation has " + std::to_string(values.size()) +
                                " values for " + std::to_string(channels) + " channels");
  }
  auto t = torch::tensor(values, torch::TensorOptions().dtype(torch::kDouble)).to(like.options());
  return t.view({1, -1, 1, 1});
}

torch::Tensor project_linf(const torch::Tensor &p, const torch::Tensor &clean, double eps) {
  return torch::min(torch::max(p, clean - eps), clean + eps).clamp(0.0, 1.0);
}

// The attack's state over one batch: the objective in pixel space and the best point found per image.
class Attacker {
 public:
  Attacker(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y, const AttackSpec &spec,
           const PixelScale &scale)
      : f_(f), y_(y), spec_(spec) {
    mean_ = per_channel(scale.mean, x.size(1), x);
    std_ = per_channel(scale.std, x.size(1), x);
    clean_ = (x.detach() * std_ + mean_).clamp(0.0, 1.0);
    best_ = clean_.clone();
    torch::NoGradGuard no_grad;
    const auto logits = f_(to_input(clean_));
    best_fooled_ = logits.argmax(1) != y_;
    best_value_ = objective(logits, torch::Tensor());
    clean_logits_ = logits;
  }

  const torch::Tensor &clean() const { return clean_; }
  const torch::Tensor &clean_logits() const { return clean_logits_; }
  torch::Tensor to_input(const torch::Tensor &p) const { return (p - mean_) / std_; }

  // The objective's value [N] and its gradient at p (pixel space); updates the best points.
  std::pair<torch::Tensor, torch::Tensor> evaluate(const torch::Tensor &p, const torch::Tensor &targets) {
    torch::AutoGradMode enable(true);
    auto point = p.detach().requires_grad_(true);
    const auto logits = f_(to_input(point));
    const auto value = objective(logits, targets);
    auto gradient = torch::autograd::grad({value.sum()}, {point})[0].detach();
    const auto v = value.detach();
    const auto fooled = logits.detach().argmax(1) != y_;
    // A point replaces the best if it fools f and the best does not, or fools as much and scores higher.
    const auto better = (fooled & ~best_fooled_) | ((fooled == best_fooled_) & (v > best_value_));
    best_ = torch::where(better.view({-1, 1, 1, 1}), point.detach(), best_);
    best_value_ = torch::where(better, v, best_value_);
    best_fooled_ = best_fooled_ | fooled;
    return {v, gradient};
  }

  AttackResult result() const { return {to_input(best_).detach(), best_fooled_.clone()}; }

  // The L-inf projection onto the eps-ball around the clean images and [0, 1].
  torch::Tensor project_linf(const torch::Tensor &p) const { return cff::project_linf(p, clean_, spec_.eps); }
  // The L2 projection (clamping to [0, 1] after it only shortens the perturbation).
  torch::Tensor project_l2(const torch::Tensor &p) const {
    auto delta = p - clean_;
    const auto norm = delta.flatten(1).norm(2, 1).clamp_min(1e-12).view({-1, 1, 1, 1});
    delta = delta * (spec_.eps / norm).clamp_max(1.0);
    return (clean_ + delta).clamp(0.0, 1.0);
  }

 private:
  torch::Tensor objective(const torch::Tensor &logits, const torch::Tensor &targets) const {
    auto value = attack_loss(logits, y_, targets, spec_.loss);
    if (spec_.energy_weight > 0) value = value + spec_.energy_weight * torch::logsumexp(logits, 1);
    return value;
  }

  const LogitsFunction &f_;
  torch::Tensor y_;
  AttackSpec spec_;
  torch::Tensor mean_, std_, clean_, clean_logits_;
  torch::Tensor best_, best_value_, best_fooled_;
};

torch::Tensor unit_l2(const torch::Tensor &g) {
  return g / g.flatten(1).norm(2, 1).clamp_min(1e-12).view({-1, 1, 1, 1});
}

void run_pgd(Attacker &a, const AttackSpec &spec, const torch::Tensor &targets, at::Generator &gen) {
  const bool l2 = spec.kind == AttackKind::pgd_l2;
  const double step = 2.5 * spec.eps / static_cast<double>(spec.steps);
  const auto &clean = a.clean();
  for (int64_t r = 0; r < spec.restarts; ++r) {
    // The first run starts at the clean image, the restarts at random points of the ball.
    torch::Tensor p;
    if (r == 0) {
      p = clean;
    } else if (l2) {
      auto direction = unit_l2(torch::randn(clean.sizes(), gen, clean.options()));
      auto radius = torch::rand({clean.size(0), 1, 1, 1}, gen, clean.options()) * spec.eps;
      p = a.project_l2(clean + direction * radius);
    } else {
      p = a.project_linf(clean + (torch::rand(clean.sizes(), gen, clean.options()) * 2 - 1) * spec.eps);
    }
    for (int64_t s = 0;; ++s) {
      const auto gradient = a.evaluate(p, targets).second;
      if (s == spec.steps) break;
      p = l2 ? a.project_l2(p + step * unit_l2(gradient)) : a.project_linf(p + step * gradient.sign());
    }
  }
}

// APGD (Croce & Hein 2020, Algorithm 1) in L-inf: step size 2 eps, momentum 0.75, and at each checkpoint
// the step is halved (and the iterate reset to the best point) where fewer than rho = 0.75 of the steps
// since the last checkpoint raised the loss, or where neither the step nor the best loss changed.
void run_apgd(Attacker &a, const AttackSpec &spec, const torch::Tensor &targets, at::Generator &gen) {
  std::vector<int64_t> checkpoints = {0};
  {
    double previous = 0.0, current = 0.22;
    while (current < 1.0) {
      checkpoints.push_back(static_cast<int64_t>(std::ceil(current * static_cast<double>(spec.steps))));
      const double next = current + std::max(current - previous - 0.03, 0.06);
      previous = current;
      current = next;
    }
  }
  const auto &clean = a.clean();
  const auto n = clean.size(0);
  const auto column = [](const torch::Tensor &mask) { return mask.view({-1, 1, 1, 1}); };
  auto x = a.project_linf(clean + (torch::rand(clean.sizes(), gen, clean.options()) * 2 - 1) * spec.eps);
  torch::Tensor value, gradient;
  std::tie(value, gradient) = a.evaluate(x, targets);
  auto eta = torch::full({n, 1, 1, 1}, 2.0 * spec.eps, clean.options());
  auto x_previous = x, x_best = x, gradient_best = gradient, loss_best = value, loss_previous = value;
  auto successes = torch::zeros({n}, clean.options());
  auto loss_best_at_check = loss_best.clone();
  auto reduced_at_check = torch::zeros({n}, torch::kBool);
  size_t next_check = 1;
  for (int64_t k = 0; k < spec.steps; ++k) {
    const auto z = a.project_linf(x + eta * gradient.sign());
    const double alpha = k == 0 ? 1.0 : 0.75;
    const auto x_new = a.project_linf(x + alpha * (z - x) + (1.0 - alpha) * (x - x_previous));
    x_previous = x;
    x = x_new;
    std::tie(value, gradient) = a.evaluate(x, targets);
    successes += (value > loss_previous).to(successes.scalar_type());
    loss_previous = value;
    const auto improved = value > loss_best;
    x_best = torch::where(column(improved), x, x_best);
    gradient_best = torch::where(column(improved), gradient, gradient_best);
    loss_best = torch::where(improved, value, loss_best);
    if (next_check < checkpoints.size() && k + 1 == checkpoints[next_check]) {
      const double height = static_cast<double>(checkpoints[next_check] - checkpoints[next_check - 1]);
      const auto stalled = successes < 0.75 * height;
      const auto unchanged = ~reduced_at_check & (loss_best <= loss_best_at_check);
      const auto reduce = stalled | unchanged;
      eta = torch::where(column(reduce), eta / 2, eta);
      x = torch::where(column(reduce), x_best, x);
      x_previous = torch::where(column(reduce), x_best, x_previous);
      gradient = torch::where(column(reduce), gradient_best, gradient);
      reduced_at_check = reduce;
      loss_best_at_check = loss_best.clone();
      successes.zero_();
      ++next_check;
    }
  }
}

}  // namespace

std::string attack_kind_name(AttackKind kind) {
  for (const auto &item : kind_names()) {
    if (item.first == kind) return item.second;
  }
  throw std::invalid_argument("attack: unknown kind");
}

std::string attack_loss_name(AttackLoss loss) {
  for (const auto &item : loss_names()) {
    if (item.first == loss) return item.second;
  }
  throw std::invalid_argument("attack: unknown loss");
}

AttackSpec AttackSpec::parse(const std::string &text) {
  AttackSpec spec;
  const auto colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  bool known = false;
  for (const auto &item : kind_names()) {
    if (item.second == kind) spec.kind = item.first, known = true;
  }
  if (!known) throw std::invalid_argument("attack: unknown kind '" + kind + "' (fgsm, pgd-linf, pgd-l2, apgd-ce, apgd-t)");
  if (spec.kind == AttackKind::fgsm) spec.steps = 1;
  if (spec.kind == AttackKind::apgd_t) {
    spec.loss = AttackLoss::dlr;
    spec.restarts = 9;
  }
  if (spec.kind == AttackKind::pgd_l2) spec.eps = 1.5;
  const AttackLoss own_loss = spec.loss;  // apgd-ce and apgd-t fix their loss
  if (colon != std::string::npos) {
    std::stringstream fields(text.substr(colon + 1));
    std::string field;
    while (std::getline(fields, field, ',')) {
      const auto eq = field.find('=');
      if (eq == std::string::npos) throw std::invalid_argument("attack: '" + field + "' is not key=value");
      const std::string key = field.substr(0, eq), value = field.substr(eq + 1);
      if (key == "eps") {
        spec.eps = parse_number(key, value);
      } else if (key == "steps") {
        spec.steps = parse_count(key, value);
      } else if (key == "restarts") {
        spec.restarts = parse_count(key, value);
      } else if (key == "energy") {
        spec.energy_weight = parse_number(key, value);
      } else if (key == "seed") {
        spec.seed = static_cast<uint64_t>(parse_count(key, value));
      } else if (key == "target") {
        if (value != "none" && value != "random") throw std::invalid_argument("attack: target must be none or random");
        spec.random_target = value == "random";
      } else if (key == "loss") {
        bool found = false;
        for (const auto &item : loss_names()) {
          if (item.second == value) spec.loss = item.first, found = true;
        }
        if (!found) throw std::invalid_argument("attack: unknown loss '" + value + "' (ce, margin, dlr)");
      } else {
        throw std::invalid_argument("attack: unknown field '" + key + "' (eps, steps, restarts, loss, target, energy, seed)");
      }
    }
  }
  if ((spec.kind == AttackKind::apgd_ce || spec.kind == AttackKind::apgd_t) && spec.loss != own_loss) {
    throw std::invalid_argument("attack: " + kind + " has its own loss (" + attack_loss_name(own_loss) + ")");
  }
  spec.validate();
  return spec;
}

void AttackSpec::validate() const {
  const auto fail = [&](const std::string &what) { throw std::invalid_argument("attack " + attack_kind_name(kind) + ": " + what); };
  if (!(eps > 0.0) || !std::isfinite(eps)) fail("eps must be positive");
  if (kind != AttackKind::pgd_l2 && eps > 1.0) fail("an L-inf eps is in [0, 1] pixel units, got " + std::to_string(eps));
  if (steps < 1) fail("steps must be >= 1");
  if (kind == AttackKind::fgsm && steps != 1) fail("FGSM takes one step");
  if (restarts < 1) fail("restarts must be >= 1");
  if (!(energy_weight >= 0.0) || !std::isfinite(energy_weight)) fail("energy must be >= 0");
  if (random_target && kind != AttackKind::pgd_linf && kind != AttackKind::pgd_l2) fail("target=random is for pgd");
}

std::string AttackSpec::to_string() const {
  std::ostringstream s;
  s << attack_kind_name(kind) << ":eps=" << eps << ",steps=" << steps << ",restarts=" << restarts
    << ",loss=" << attack_loss_name(loss) << ",target=" << (random_target ? "random" : "none")
    << ",energy=" << energy_weight << ",seed=" << seed;
  return s.str();
}

torch::Tensor attack_loss(const torch::Tensor &logits, const torch::Tensor &y, const torch::Tensor &targets,
                          AttackLoss loss) {
  const bool targeted = targets.defined();
  switch (loss) {
    case AttackLoss::ce: {
      namespace F = torch::nn::functional;
      const auto options = F::CrossEntropyFuncOptions().reduction(torch::kNone);
      return targeted ? -F::cross_entropy(logits, targets, options) : F::cross_entropy(logits, y, options);
    }
    case AttackLoss::margin:
      return targeted ? gather(logits, targets) - max_other(logits, targets) : max_other(logits, y) - gather(logits, y);
    case AttackLoss::dlr: {
      const int64_t needed = targeted ? 4 : 3;
      if (logits.size(1) < needed) {
        throw std::invalid_argument("attack: the DLR loss needs at least " + std::to_string(needed) + " classes");
      }
      const auto sorted = std::get<0>(logits.sort(1, /*descending=*/true));
      const auto top = sorted.select(1, 0), third = sorted.select(1, 2);
      if (targeted) {
        const auto scale = top - 0.5 * (third + sorted.select(1, 3)) + 1e-12;
        return -(gather(logits, y) - gather(logits, targets)) / scale;
      }
      return -(gather(logits, y) - max_other(logits, y)) / (top - third + 1e-12);
    }
  }
  throw std::invalid_argument("attack: unknown loss");
}

int64_t BatchShard::global_rows(int64_t local) const {
  if (count < 1 || index < 0 || index >= count || global < 0) {
    throw std::invalid_argument("batch shard: index " + std::to_string(index) + " of " + std::to_string(count) +
                                " is not a shard");
  }
  if (global == 0) {
    if (count != 1) throw std::invalid_argument("batch shard: a shard of several needs the global batch size");
    return local;
  }
  const int64_t held = global > index ? (global - index + count - 1) / count : 0;
  if (held != local) {
    throw std::invalid_argument("batch shard: shard " + std::to_string(index) + " of " + std::to_string(count) + " of " +
                                std::to_string(global) + " rows holds " + std::to_string(held) + ", got " +
                                std::to_string(local));
  }
  return global;
}

torch::Tensor BatchShard::rows_of(const torch::Tensor &drawn, int64_t n) const {
  if (count == 1) return drawn.narrow(0, 0, n);
  return drawn.slice(0, std::min(index, n), n, count);
}

torch::Tensor training_adversary(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y, bool kl,
                                 double eps, int64_t steps, double step_size, const PixelScale &scale,
                                 c10::optional<at::Generator> generator, const BatchShard &shard) {
  if (!(eps > 0.0 && eps <= 1.0) || steps < 1 || !(step_size > 0.0)) {
    throw std::invalid_argument("training adversary: eps must be in (0, 1], steps >= 1 and the step size positive");
  }
  const auto mean = per_channel(scale.mean, x.size(1), x), std = per_channel(scale.std, x.size(1), x);
  const auto to_input = [&](const torch::Tensor &p) { return (p - mean) / std; };
  const auto clean = (x.detach() * std + mean).clamp(0.0, 1.0);
  const auto cpu = torch::TensorOptions().dtype(x.scalar_type());
  // The starting points are drawn for the global batch; this shard takes its rows.
  const int64_t global = shard.global_rows(x.size(0));
  auto shape = x.sizes().vec();
  shape[0] = global;
  torch::Tensor reference, p;
  if (kl) {
    torch::NoGradGuard no_grad;
    reference = torch::log_softmax(f(x.detach()), 1).detach();
    p = project_linf(clean + 0.001 * shard.rows_of(torch::randn(shape, generator, cpu), global).to(x.device()), clean, eps);
  } else {
    p = project_linf(clean + (shard.rows_of(torch::rand(shape, generator, cpu), global).to(x.device()) * 2 - 1) * eps,
                     clean, eps);
  }
  torch::AutoGradMode enable(true);
  for (int64_t k = 0; k < steps; ++k) {
    auto point = p.detach().requires_grad_(true);
    const auto logits = f(to_input(point));
    const auto objective = kl ? (reference.exp() * (reference - torch::log_softmax(logits, 1))).sum()
                              : attack_loss(logits, y, torch::Tensor(), AttackLoss::ce).sum();
    const auto gradient = torch::autograd::grad({objective}, {point})[0];
    p = project_linf(p + step_size * gradient.sign(), clean, eps);
  }
  return to_input(p).detach();
}

AttackResult attack(const LogitsFunction &f, const torch::Tensor &x, const torch::Tensor &y, const AttackSpec &spec,
                    const PixelScale &scale) {
  spec.validate();
  if (x.dim() != 4 || y.dim() != 1 || y.size(0) != x.size(0)) {
    throw std::invalid_argument("attack: images must be [N, C, H, W] with one label each");
  }
  Attacker a(f, x, y, spec, scale);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  const auto classes = a.clean_logits().size(1);
  switch (spec.kind) {
    case AttackKind::fgsm: {
      const auto gradient = a.evaluate(a.clean(), torch::Tensor()).second;
      a.evaluate(a.project_linf(a.clean() + spec.eps * gradient.sign()), torch::Tensor());
      break;
    }
    case AttackKind::pgd_linf:
    case AttackKind::pgd_l2: {
      torch::Tensor targets;
      if (spec.random_target) {
        targets = (y + 1 + torch::randint(classes - 1, y.sizes(), gen, y.options())) % classes;
      }
      run_pgd(a, spec, targets, gen);
      break;
    }
    case AttackKind::apgd_ce:
      for (int64_t r = 0; r < spec.restarts; ++r) run_apgd(a, spec, torch::Tensor(), gen);
      break;
    case AttackKind::apgd_t: {
      // The runner-up classes of the clean logits, one run each (AutoAttack's APGD-T).
      const auto order = std::get<1>(a.clean_logits().sort(1, /*descending=*/true));
      const int64_t runs = std::min<int64_t>(spec.restarts, classes - 1);
      for (int64_t r = 0; r < runs; ++r) run_apgd(a, spec, order.select(1, r + 1).contiguous(), gen);
      break;
    }
  }
  return a.result();
}

}  // namespace cff
