// Out-of-distribution scores and their evaluation. Convention: a higher score means "more unusual".
#pragma once

#include <vector>

#include <torch/types.h>

namespace cff {

// Area under the ROC curve for telling out-scores from in-scores (ties count half).
// 1.0 = every out-score above every in-score, 0.5 = chance. Throws if either set is empty.
double auroc(const std::vector<double> &in_scores, const std::vector<double> &out_scores);

// The usual "FPR at 95% TPR": with the threshold that keeps `tpr` of the in-distribution scores
// (in-distribution is the positive class), the fraction of OOD scores that pass as in-distribution.
// 0 is perfect.
double fpr_at_tpr(const std::vector<double> &in_scores, const std::vector<double> &out_scores, double tpr = 0.95);

// Area under the precision-recall curve with OOD as the positive class.
double aupr(const std::vector<double> &in_scores, const std::vector<double> &out_scores);

// Threshold that keeps `keep` of the in-distribution scores at or below it (e.g. 0.95):
// frames scoring above it are flagged OOD.
double calibrate_threshold(const std::vector<double> &in_scores, double keep = 0.95);

// Max-softmax baseline turned into an OOD score: 1 - max_y p(y|x). [N]
torch::Tensor max_softmax_score(const torch::Tensor &logits);

std::vector<double> to_vector(const torch::Tensor &t);

}  // namespace cff
