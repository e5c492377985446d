#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include <torch/torch.h>

namespace cff::eval {

Calibration expected_calibration_error(const torch::Tensor &probabilities, const torch::Tensor &labels,
                                       int64_t bins) {
  if (probabilities.dim() != 2 || labels.dim() != 1 || probabilities.size(0) != labels.size(0)) {
    throw std::invalid_argument("calibration: expected probabilities [N, K] and labels [N]");
  }
  if (probabilities.size(0) == 0) throw std::invalid_argument("calibration: no samples");
  if (bins < 1) throw std::invalid_argument("calibration: bins must be >= 1");
  const auto p = probabilities.detach().to(torch::kCPU, torch::kDouble);
  const auto [confidence, predicted] = p.max(1);
  const auto correct = predicted.eq(labels.to(torch::kCPU)).to(torch::kDouble);
  const auto index = (confidence * static_cast<double>(bins)).floor().clamp(0, static_cast<double>(bins - 1)).to(torch::kLong);
  Calibration result;
  result.bins.resize(static_cast<size_t>(bins));
  const double n = static_cast<double>(p.size(0));
  for (int64_t b = 0; b < bins; ++b) {
    const auto in_bin = index.eq(b);
    auto &bin = result.bins[static_cast<size_t>(b)];
    bin.count = in_bin.sum().item<int64_t>();
    if (bin.count == 0) continue;
    bin.confidence = confidence.masked_select(in_bin).mean().item<double>();
    bin.accuracy = correct.masked_select(in_bin).mean().item<double>();
    result.ece += static_cast<double>(bin.count) / n * std::abs(bin.accuracy - bin.confidence);
  }
  return result;
}

torch::Tensor confusion_matrix(const torch::Tensor &predicted, const torch::Tensor &labels, int64_t num_classes) {
  if (predicted.sizes() != labels.sizes() || predicted.dim() != 1) {
    throw std::invalid_argument("confusion matrix: expected predicted [N] and labels [N]");
  }
  const auto flat = labels.to(torch::kCPU, torch::kLong) * num_classes + predicted.to(torch::kCPU, torch::kLong);
  return torch::bincount(flat, {}, num_classes * num_classes).view({num_classes, num_classes});
}

RocCurve roc_curve(const std::vector<double> &in_scores, const std::vector<double> &out_scores, size_t max_points) {
  if (in_scores.empty() || out_scores.empty()) throw std::invalid_argument("ROC curve: empty score set");
  std::vector<std::pair<double, int>> pooled;
  pooled.reserve(in_scores.size() + out_scores.size());
  for (double s : in_scores) pooled.emplace_back(s, 0);
  for (double s : out_scores) pooled.emplace_back(s, 1);
  std::sort(pooled.begin(), pooled.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
  const double n_in = static_cast<double>(in_scores.size()), n_out = static_cast<double>(out_scores.size());
  RocCurve all;
  all.false_positive_rate.push_back(0);
  all.true_positive_rate.push_back(0);
  double flagged_in = 0, flagged_out = 0;
  for (size_t i = 0; i < pooled.size();) {
    size_t j = i;
    while (j < pooled.size() && pooled[j].first == pooled[i].first) {
      (pooled[j].second ? flagged_out : flagged_in) += 1;
      ++j;
    }
    all.false_positive_rate.push_back(flagged_in / n_in);
    all.true_positive_rate.push_back(flagged_out / n_out);
    i = j;
  }
  const size_t n = all.false_positive_rate.size();
  if (max_points < 2 || n <= max_points) return all;
  RocCurve thinned;
  for (size_t k = 0; k < max_points; ++k) {
    const size_t i = k * (n - 1) / (max_points - 1);
    thinned.false_positive_rate.push_back(all.false_positive_rate[i]);
    thinned.true_positive_rate.push_back(all.true_positive_rate[i]);
  }
  return thinned;
}

GaussianStatistics gaussian_statistics(const torch::Tensor &features) {
  if (features.dim() != 2 || features.size(0) < 2) throw std::invalid_argument("statistics: need features [N >= 2, F]");
  const auto f = features.detach().to(torch::kCPU, torch::kDouble);
  GaussianStatistics s;
  s.mean = f.mean(0);
  const auto centred = f - s.mean;
  s.covariance = centred.t().mm(centred) / static_cast<double>(f.size(0) - 1);
  return s;
}

torch::Tensor psd_sqrt(const torch::Tensor &matrix) {
  const auto symmetric = matrix.to(torch::kDouble);
  const auto [values, vectors] = torch::linalg_eigh((symmetric + symmetric.t()) / 2);
  return vectors.mm(torch::diag(values.clamp_min(0).sqrt())).mm(vectors.t());
}

double frechet_distance(const GaussianStatistics &a, const GaussianStatistics &b) {
  if (a.mean.sizes() != b.mean.sizes()) throw std::invalid_argument("Fréchet distance: feature sizes differ");
  const auto root_a = psd_sqrt(a.covariance);
  const auto cross = psd_sqrt(root_a.mm(b.covariance.to(torch::kDouble)).mm(root_a));
  const double mean_term = (a.mean - b.mean).pow(2).sum().item<double>();
  const double trace_term = (a.covariance.trace() + b.covariance.trace() - 2 * cross.trace()).item<double>();
  return mean_term + trace_term;
}

torch::Tensor psnr(const torch::Tensor &a, const torch::Tensor &b, double peak) {
  if (a.sizes() != b.sizes() || a.dim() != 4) throw std::invalid_argument("PSNR: expected two [N, C, H, W] of one size");
  const auto mse = (a.to(torch::kDouble) - b.to(torch::kDouble)).pow(2).flatten(1).mean(1).clamp_min(1e-10);
  return 10.0 * torch::log10(peak * peak / mse);
}

torch::Tensor ssim(const torch::Tensor &a, const torch::Tensor &b, double peak) {
  if (a.sizes() != b.sizes() || a.dim() != 4) throw std::invalid_argument("SSIM: expected two [N, C, H, W] of one size");
  const int64_t n = a.size(0), c = a.size(1), h = a.size(2), w = a.size(3);
  int64_t size = std::min<int64_t>({11, h, w});
  if (size % 2 == 0) size -= 1;
  if (size < 1) throw std::invalid_argument("SSIM: empty images");
  const auto offsets = torch::arange(size, torch::kDouble) - static_cast<double>(size / 2);
  auto g = torch::exp(-offsets.pow(2) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  const auto window = g.unsqueeze(1).mm(g.unsqueeze(0)).view({1, 1, size, size});
  const auto x = a.to(torch::kCPU, torch::kDouble).reshape({n * c, 1, h, w});
  const auto y = b.to(torch::kCPU, torch::kDouble).reshape({n * c, 1, h, w});
  const auto blur = [&](const torch::Tensor &t) { return torch::conv2d(t, window); };
  const auto mu_x = blur(x), mu_y = blur(y);
  const auto var_x = blur(x * x) - mu_x * mu_x, var_y = blur(y * y) - mu_y * mu_y;
  const auto cov_xy = blur(x * y) - mu_x * mu_y;
  const double c1 = std::pow(0.01 * peak, 2), c2 = std::pow(0.03 * peak, 2);
  const auto map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2));
  return map.flatten(1).mean(1).view({n, c}).mean(1);
}

double mean_pairwise_distance(const torch::Tensor &x) {
  const int64_t n = x.size(0);
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  const auto flat = x.reshape({n, -1}).to(torch::kDouble);
  // The diagonal of cdist is zero, so the sum over all ordered pairs counts each distinct pair twice.
  return torch::cdist(flat, flat).sum().item<double>() / static_cast<double>(n * (n - 1));
}

}  // namespace cff::eval
