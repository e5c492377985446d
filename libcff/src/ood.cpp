#include "cff/ood.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

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

}  // namespace cff
