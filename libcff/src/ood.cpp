#include "cff/ood.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <torch/torch.h>

#include "cff/energy.h"

namespace cff {
namespace {

void require_scores(const std::vector<double> &in_scores, const std::vector<double> &out_scores) {
  if (in_scores.empty() || out_scores.empty()) throw std::invalid_argument("OOD metric: empty score set");
}

}  // namespace

double auroc(const std::vector<double> &in_scores, const std::vector<double> &out_scores) {
  require_scores(in_scores, out_scores);
  // Mann-Whitney U via ranks of the pooled scores, with ties given their average rank.
  std::vector<std::pair<double, int>> pooled;
  pooled.reserve(in_scores.size() + out_scores.size());
  for (double s : in_scores) pooled.emplace_back(s, 0);
  for (double s : out_scores) pooled.emplace_back(s, 1);
  std::sort(pooled.begin(), pooled.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
  double rank_sum_out = 0.0;
  size_t i = 0;
  while (i < pooled.size()) {
    size_t j = i;
    while (j + 1 < pooled.size() && pooled[j + 1].first == pooled[i].first) ++j;
    const double average_rank = 0.5 * static_cast<double>(i + j) + 1.0;
    for (size_t k = i; k <= j; ++k) {
      if (pooled[k].second == 1) rank_sum_out += average_rank;
    }
    i = j + 1;
  }
  const double n_out = static_cast<double>(out_scores.size()), n_in = static_cast<double>(in_scores.size());
  return (rank_sum_out - n_out * (n_out + 1.0) / 2.0) / (n_out * n_in);
}

double calibrate_threshold(const std::vector<double> &in_scores, double keep) {
  if (in_scores.empty()) throw std::invalid_argument("OOD calibration: no in-distribution scores");
  if (!(keep > 0.0 && keep <= 1.0)) throw std::invalid_argument("OOD calibration: keep must be in (0, 1]");
  std::vector<double> sorted = in_scores;
  std::sort(sorted.begin(), sorted.end());
  const size_t index = std::min(sorted.size() - 1,
                                static_cast<size_t>(std::ceil(keep * static_cast<double>(sorted.size()))) - 1);
  return sorted[index];
}

double fpr_at_tpr(const std::vector<double> &in_scores, const std::vector<double> &out_scores, double tpr) {
  require_scores(in_scores, out_scores);
  const double threshold = calibrate_threshold(in_scores, tpr);
  const auto passed = std::count_if(out_scores.begin(), out_scores.end(), [&](double s) { return s <= threshold; });
  return static_cast<double>(passed) / static_cast<double>(out_scores.size());
}

double aupr(const std::vector<double> &in_scores, const std::vector<double> &out_scores) {
  require_scores(in_scores, out_scores);
  // Average precision with OOD as positives, scores ranked from most to least unusual.
  std::vector<std::pair<double, int>> pooled;
  for (double s : in_scores) pooled.emplace_back(s, 0);
  for (double s : out_scores) pooled.emplace_back(s, 1);
  std::sort(pooled.begin(), pooled.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
  double true_positives = 0.0, precision_sum = 0.0;
  size_t i = 0;
  while (i < pooled.size()) {
    size_t j = i;
    double tied_pos = 0.0;
    while (j < pooled.size() && pooled[j].first == pooled[i].first) tied_pos += pooled[j++].second;
    true_positives += tied_pos;
    precision_sum += tied_pos * (true_positives / static_cast<double>(j));
    i = j;
  }
  return precision_sum / static_cast<double>(out_scores.size());
}

torch::Tensor max_softmax_score(const torch::Tensor &logits) {
  return 1.0 - std::get<0>(torch::softmax(logits, 1).max(1));
}

std::vector<double> to_vector(const torch::Tensor &t) {
  auto c = t.detach().to(torch::kCPU, torch::kDouble).contiguous().view({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// ---- Fitted OOD scores ---------------------------------------------------------------------------

namespace {

constexpr const char *kEnergy = "energy", *kMsp = "msp", *kMahalanobis = "mahalanobis",
                     *kMoments = "mahalanobis-moments", *kComplexity = "complexity-energy";

void require(bool ok, const std::string &what) {
  if (!ok) throw std::invalid_argument(what);
}

torch::Tensor as_double_cpu(const torch::Tensor &t) { return t.detach().to(torch::kCPU, torch::kDouble); }

}  // namespace

const std::vector<std::string> &ood_score_names() {
  static const std::vector<std::string> names = {kEnergy, kMsp, kMahalanobis, kMoments, kComplexity};
  return names;
}

bool is_ood_score_name(const std::string &name) {
  const auto &names = ood_score_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool ood_score_needs_features(const std::string &name) { return name == kMahalanobis || name == kMoments; }
bool ood_score_needs_complexity(const std::string &name) { return name == kComplexity; }

torch::Tensor image_complexity(const torch::Tensor &x, const std::vector<double> &mean, const std::vector<double> &std) {
  require(x.dim() == 4, "image_complexity: expected images [N, C, H, W]");
  const int64_t c = x.size(1);
  require(static_cast<int64_t>(mean.size()) == c && static_cast<int64_t>(std.size()) == c,
          "image_complexity: one mean and one std per channel expected");
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(torch::kDouble);
  const auto m = torch::tensor(mean, options).view({1, c, 1, 1}), s = torch::tensor(std, options).view({1, c, 1, 1});
  auto v = as_double_cpu(x);
  v = torch::where(torch::isfinite(v), v, torch::zeros({}, v.options()));  // NaN/Inf pixels count as 0
  const auto p = (255.0 * (v * s + m)).round().clamp(0, 255);
  // Median edge detector: neighbours left (a), above (b), above-left (c), zero outside the image.
  const auto padded = torch::constant_pad_nd(p, {1, 0, 1, 0}, 0.0);
  const int64_t h = x.size(2), w = x.size(3);
  const auto a = padded.slice(2, 1, h + 1).slice(3, 0, w), b = padded.slice(2, 0, h).slice(3, 1, w + 1),
             cc = padded.slice(2, 0, h).slice(3, 0, w);
  const auto lo = torch::minimum(a, b), hi = torch::maximum(a, b);
  const auto prediction = torch::where(cc >= hi, lo, torch::where(cc <= lo, hi, a + b - cc));
  const auto residual = (p - prediction + 255.0).to(torch::kLong).flatten(1);  // 0..510
  const int64_t n = x.size(0), count = residual.size(1);
  auto histogram = torch::zeros({n, 511}, options).scatter_add_(1, residual, torch::ones(residual.sizes(), options));
  const auto probability = histogram / static_cast<double>(count);
  return -(probability * torch::log2(probability.clamp_min(1e-300))).sum(1);
}

GaussianClassModel GaussianClassModel::fit(const torch::Tensor &features, const torch::Tensor &labels,
                                           int64_t num_classes, double ridge) {
  require(features.dim() == 2 && labels.dim() == 1 && features.size(0) == labels.size(0) && features.size(0) >= 2,
          "Mahalanobis fit: expected features [N, F] and labels [N] with N >= 2");
  const auto f = as_double_cpu(features);
  const auto y = labels.to(torch::kCPU, torch::kLong);
  const auto counts = torch::bincount(y, {}, num_classes);
  require(counts.size(0) == num_classes && counts.min().item<int64_t>() > 0, "Mahalanobis fit: a class has no samples");
  auto means = torch::zeros({num_classes, f.size(1)}, torch::kDouble).index_add_(0, y, f) /
               counts.to(torch::kDouble).unsqueeze(1);
  const auto centred = f - means.index_select(0, y);
  auto covariance = centred.t().mm(centred) / static_cast<double>(f.size(0));
  const double scale = std::max(covariance.diagonal().mean().item<double>(), 1e-12);
  covariance += torch::eye(f.size(1), torch::kDouble) * (ridge * scale);
  const auto cholesky = torch::linalg_cholesky(covariance);
  const auto inverse = torch::linalg_solve_triangular(cholesky, torch::eye(f.size(1), torch::kDouble),
                                                      /*upper=*/false);
  // Rounded through float32, as the model file stores them: thresholds calibrated on these give the
  // same decisions after a reload.
  return GaussianClassModel(means.to(torch::kFloat).to(torch::kDouble),
                            inverse.t().contiguous().to(torch::kFloat).to(torch::kDouble));
}

GaussianClassModel::GaussianClassModel(torch::Tensor means, torch::Tensor precision_factor) {
  require(means.dim() == 2 && means.size(0) >= 1 && means.size(1) >= 1, "Mahalanobis model: means must be [K, F]");
  require(precision_factor.dim() == 2 && precision_factor.size(0) == means.size(1) &&
              precision_factor.size(1) == means.size(1),
          "Mahalanobis model: precision factor must be [F, F] for means [K, F]");
  means_ = as_double_cpu(means).contiguous();
  precision_factor_ = as_double_cpu(precision_factor).contiguous();
  require(torch::isfinite(means_).all().item<bool>() && torch::isfinite(precision_factor_).all().item<bool>(),
          "Mahalanobis model: NaN or Inf values");
  centres_ = means_.mm(precision_factor_);
  centre_norms_ = centres_.pow(2).sum(1).unsqueeze(0);
}

torch::Tensor GaussianClassModel::distance(const torch::Tensor &features) const {
  require(fitted(), "Mahalanobis score: not fitted");
  require(features.dim() == 2 && features.size(1) == dimension(),
          "Mahalanobis score: expected features [N, " + std::to_string(dimension()) + "]");
  const auto z = as_double_cpu(features).mm(precision_factor_);
  // ||z - c||^2 = |z|^2 + |c|^2 - 2 z.c for every class at once.
  const auto squared = z.pow(2).sum(1, true) + centre_norms_ - 2 * z.mm(centres_.t());
  return std::get<0>(squared.clamp_min(0).min(1));
}

OodDetector OodDetector::fit(const OodInputs &train, const torch::Tensor &labels, int64_t num_classes,
                             const OodInputs &holdout, const FitOptions &options) {
  require(train.logits.defined() && train.logits.dim() == 2, "OOD fit: training logits [N, K] needed");
  require(options.keep > 0.0 && options.keep <= 1.0, "OOD fit: keep must be in (0, 1]");
  OodDetector d;
  d.keep_ = options.keep;
  d.fit_images_ = train.logits.size(0);
  if (train.penultimate.defined()) {
    d.penultimate_ = GaussianClassModel::fit(train.penultimate, labels, num_classes, options.ridge);
  }
  if (train.moments.defined()) d.moments_ = GaussianClassModel::fit(train.moments, labels, num_classes, options.ridge);
  if (train.complexity.defined()) {
    // Least-squares slope of U against L over the training images.
    const auto u = free_energy(as_double_cpu(train.logits)), l = as_double_cpu(train.complexity);
    const auto lc = l - l.mean();
    const double variance = lc.pow(2).sum().item<double>();
    const double slope = variance > 1e-12 ? ((u - u.mean()) * lc).sum().item<double>() / variance : 0.0;
    if (std::isfinite(slope)) d.complexity_slope_ = slope;  // else the score is left out
  }
  d.listed_ = d.available();
  if (holdout.logits.defined() && holdout.logits.size(0) > 0) {
    for (const auto &name : d.listed_) {
      auto values = to_vector(d.score(name, holdout));
      values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }), values.end());
      if (!values.empty()) d.thresholds_[name] = calibrate_threshold(values, options.keep);
    }
  }
  return d;
}

OodDetector OodDetector::energy_only(std::optional<double> threshold, double keep) {
  OodDetector d;
  d.keep_ = keep;
  d.listed_ = {kEnergy, kMsp};
  if (threshold) d.thresholds_[kEnergy] = *threshold;
  return d;
}

std::vector<std::string> OodDetector::available() const {
  std::vector<std::string> names = {kEnergy, kMsp};
  if (penultimate_.fitted()) names.push_back(kMahalanobis);
  if (moments_.fitted()) names.push_back(kMoments);
  if (complexity_slope_) names.push_back(kComplexity);
  return names;
}

bool OodDetector::has(const std::string &name) const {
  const auto names = available();
  return std::find(names.begin(), names.end(), name) != names.end();
}

torch::Tensor OodDetector::score(const std::string &name, const OodInputs &inputs) const {
  require(has(name), "OOD score '" + name + "' is not available for this model (it has " + [this] {
            std::string list;
            for (const auto &n : available()) list += (list.empty() ? "" : ", ") + n;
            return list;
          }() + ")");
  auto need = [&name](const torch::Tensor &t, const char *what) -> const torch::Tensor & {
    require(t.defined(), "OOD score '" + name + "' needs the " + what);
    return t;
  };
  torch::NoGradGuard no_grad;
  // Energies in double precision, as Engine::classify reports them.
  if (name == kEnergy) return free_energy(as_double_cpu(need(inputs.logits, "logits")));
  if (name == kMsp) return max_softmax_score(as_double_cpu(need(inputs.logits, "logits")));
  if (name == kMahalanobis) return penultimate_.distance(need(inputs.penultimate, "penultimate features"));
  if (name == kMoments) return moments_.distance(need(inputs.moments, "feature moments"));
  return free_energy(as_double_cpu(need(inputs.logits, "logits"))) -
         *complexity_slope_ * as_double_cpu(need(inputs.complexity, "image complexity"));
}

std::optional<double> OodDetector::threshold(const std::string &name) const {
  auto it = thresholds_.find(name);
  if (it == thresholds_.end()) return std::nullopt;
  return it->second;
}

void OodDetector::set_recommended(const std::string &name) {
  require(is_ood_score_name(name), "unknown OOD score '" + name + "'");
  recommended_ = name;
}

std::vector<std::string> OodDetector::listed() const { return listed_; }

void OodDetector::check_shapes(int64_t num_classes, int64_t penultimate, int64_t moments) const {
  auto check = [num_classes](const GaussianClassModel &m, int64_t dimension, const char *name) {
    if (!m.fitted()) return;
    require(m.means().size(0) == num_classes && m.dimension() == dimension,
            std::string("OOD score '") + name + "': class model of " + std::to_string(m.means().size(0)) + " x " +
                std::to_string(m.dimension()) + ", the network has " + std::to_string(num_classes) + " classes and " +
                std::to_string(dimension) + " features");
  };
  check(penultimate_, penultimate, kMahalanobis);
  check(moments_, moments, kMoments);
}

nlohmann::json OodDetector::to_json() const {
  nlohmann::json scores = nlohmann::json::object();
  for (const auto &name : listed_) {
    auto t = threshold(name);
    scores[name] = {{"threshold", t ? nlohmann::json(*t) : nlohmann::json(nullptr)}};
  }
  // "score", "threshold" and "calibrated" keep the meaning older readers give them: the energy's.
  const auto energy = threshold(kEnergy);
  return {{"score", kEnergy},
          {"threshold", energy.value_or(0.0)},
          {"calibrated", energy.has_value()},
          {"recommended", recommended_},
          {"keep_rate", keep_},
          {"scores", scores},
          {"complexity_slope", complexity_slope_ ? nlohmann::json(*complexity_slope_) : nlohmann::json(nullptr)},
          {"fit_images", fit_images_}};
}

OodDetector OodDetector::from_json(const nlohmann::json &j) {
  require(j.is_object(), "'ood' is not an object");
  const std::string score = j.value("score", std::string(kEnergy));
  const bool calibrated = j.value("calibrated", false);
  const double keep = j.value("keep_rate", 0.95);
  require(keep > 0.0 && keep <= 1.0, "ood keep_rate must be in (0, 1]");
  if (!j.contains("scores")) {
    // Written before the fitted scores: one energy threshold (the score was called "free_energy").
    require(score == "free_energy" || score == kEnergy, "ood score '" + score + "' without a 'scores' table");
    return energy_only(calibrated ? std::optional<double>(j.value("threshold", 0.0)) : std::nullopt, keep);
  }
  OodDetector d;
  d.keep_ = keep;
  d.fit_images_ = j.value("fit_images", int64_t{0});
  const auto &scores = j.at("scores");
  require(scores.is_object(), "ood 'scores' is not an object");
  for (const auto &item : scores.items()) {
    require(is_ood_score_name(item.key()), "unknown OOD score '" + item.key() + "'");
    const auto &t = item.value().at("threshold");
    if (!t.is_null()) {
      require(t.is_number() && std::isfinite(t.get<double>()), "OOD score '" + item.key() + "': bad threshold");
      d.thresholds_[item.key()] = t.get<double>();
    }
  }
  d.listed_.clear();  // in ood_score_names() order (JSON objects keep their keys sorted)
  for (const auto &name : ood_score_names()) {
    if (scores.contains(name)) d.listed_.push_back(name);
  }
  if (j.contains("complexity_slope") && !j.at("complexity_slope").is_null()) {
    d.complexity_slope_ = j.at("complexity_slope").get<double>();
  }
  const std::string recommended = j.value("recommended", std::string(kEnergy));
  require(std::find(d.listed_.begin(), d.listed_.end(), recommended) != d.listed_.end(),
          "recommended OOD score '" + recommended + "' is not in the 'scores' table");
  d.recommended_ = recommended;
  return d;
}

std::map<std::string, torch::Tensor> OodDetector::tensors() const {
  std::map<std::string, torch::Tensor> out;
  if (penultimate_.fitted()) {
    out["ood/mahalanobis/means"] = penultimate_.means();
    out["ood/mahalanobis/precision_factor"] = penultimate_.precision_factor();
  }
  if (moments_.fitted()) {
    out["ood/mahalanobis-moments/means"] = moments_.means();
    out["ood/mahalanobis-moments/precision_factor"] = moments_.precision_factor();
  }
  return out;
}

void OodDetector::attach_tensors(const std::map<std::string, torch::Tensor> &tensors) {
  auto model_for = [&](const std::string &name) {
    const auto means = tensors.find("ood/" + name + "/means"), factor = tensors.find("ood/" + name + "/precision_factor");
    require(means != tensors.end() && factor != tensors.end(), "OOD score '" + name + "': its tensors are missing");
    return GaussianClassModel(means->second, factor->second);
  };
  for (const auto &name : listed_) {
    if (name == kMahalanobis) penultimate_ = model_for(name);
    if (name == kMoments) moments_ = model_for(name);
  }
  if (std::find(listed_.begin(), listed_.end(), std::string(kComplexity)) != listed_.end()) {
    require(complexity_slope_.has_value(), "OOD score 'complexity-energy' without its complexity_slope");
  }
  for (const auto &item : tensors) {
    const auto score = item.first.substr(4, item.first.rfind('/') - 4);
    require(std::find(listed_.begin(), listed_.end(), score) != listed_.end(),
            "tensor '" + item.first + "' belongs to no listed OOD score");
  }
}

}  // namespace cff
