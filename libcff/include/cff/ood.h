// Out-of-distribution scores and their evaluation. Convention: a higher score means "more unusual".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

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

// ---- Fitted OOD scores (docs/ood.md) -------------------------------------------------------------
//
// Every score is "higher = more out of distribution" and is read from one forward pass:
//   energy               U(x) = -logsumexp f(x), the CFF free energy
//   msp                  1 - max_y p(y|x) (Hendrycks & Gimpel 2017)
//   mahalanobis          smallest squared Mahalanobis distance of the penultimate features to a class mean,
//                        class means and one shared covariance fitted on training images (Lee et al. 2018)
//   mahalanobis-moments  the same on the per-channel mean and standard deviation of the last stage's
//                        feature maps: it sees texture and contrast statistics that global pooling averages
//                        away (simple strokes, flat or blurred frames, upside-down content)
//   complexity-energy    U(x) - a * L(x), L = the frame's complexity in bits per sample (image_complexity),
//                        a fitted on training images as the slope of U against L (Serra et al. 2020: simple
//                        inputs get low energies; the correction removes what the complexity explains)

// The names above, in this order.
const std::vector<std::string> &ood_score_names();
bool is_ood_score_name(const std::string &name);
// What a score reads besides the logits: the network's features (the Mahalanobis scores), the image's
// complexity (complexity-energy).
bool ood_score_needs_features(const std::string &name);
bool ood_score_needs_complexity(const std::string &name);

// Complexity of images in bits per sample (per channel value): the empirical entropy of the residuals of the median edge
// detector predictor (LOCO-I / JPEG-LS, the predictor lossless coders use) over all channels, on pixel
// values p = round(255 * (x * std + mean)). A proxy for the lossless-compressed length. x: [N, C, H, W]
// in model input space (NaN/Inf values count as 0); returns [N] double.
torch::Tensor image_complexity(const torch::Tensor &x, const std::vector<double> &mean, const std::vector<double> &std);

// What the scores are computed from, for a batch of N images (undefined tensors where a model has
// no such output, e.g. a TorchScript import has logits only).
struct OodInputs {
  torch::Tensor logits;       // [N, K]
  torch::Tensor penultimate;  // [N, F]
  torch::Tensor moments;      // [N, M]
  torch::Tensor complexity;   // [N] bits per pixel
};

// Class-conditional Gaussians with one shared covariance (Lee et al. 2018).
class GaussianClassModel {
 public:
  GaussianClassModel() = default;
  // features: [N, F]; labels: int64 [N] in [0, num_classes). The covariance gets ridge * (mean of its
  // diagonal) added to the diagonal, so it is invertible with few samples. Throws std::invalid_argument
  // on bad shapes or a class with no samples.
  static GaussianClassModel fit(const torch::Tensor &features, const torch::Tensor &labels, int64_t num_classes,
                                double ridge = 1e-4);
  // From stored tensors: means [K, F], precision_factor [F, F] (L^-T with Sigma = L L^T).
  // Throws std::invalid_argument on inconsistent shapes or non-finite values.
  GaussianClassModel(torch::Tensor means, torch::Tensor precision_factor);
  // Smallest squared Mahalanobis distance to a class mean: [N] double.
  torch::Tensor distance(const torch::Tensor &features) const;
  bool fitted() const { return means_.defined(); }
  int64_t dimension() const { return fitted() ? means_.size(1) : 0; }
  const torch::Tensor &means() const { return means_; }
  const torch::Tensor &precision_factor() const { return precision_factor_; }

 private:
  torch::Tensor means_, precision_factor_;  // double, CPU
  torch::Tensor centres_, centre_norms_;    // means_ . precision_factor_ [K, F] and their squared norms [K]
};

// The scores a model carries, with one calibrated threshold each.
class OodDetector {
 public:
  // What fit measures on: features of training images (fit) and of held-out images (calibration).
  struct FitOptions {
    double ridge = 1e-4;
    double keep = 0.95;  // share of held-out in-distribution images each threshold keeps
  };
  // Fits every score the inputs allow (energy and msp need only logits; complexity-energy logits and
  // complexity; the Mahalanobis scores their features) on `train` with `labels`, then calibrates each
  // score's threshold on `holdout` (no thresholds when holdout has no logits).
  static OodDetector fit(const OodInputs &train, const torch::Tensor &labels, int64_t num_classes,
                         const OodInputs &holdout, const FitOptions &options);
  // Energy only, with an optional calibrated threshold: what a model file written before the fitted
  // scores carries.
  static OodDetector energy_only(std::optional<double> threshold, double keep = 0.95);

  // The scores this detector computes, in ood_score_names() order.
  std::vector<std::string> available() const;
  bool has(const std::string &name) const;
  // [N] double, higher = more unusual. Throws std::invalid_argument for a score it does not have.
  torch::Tensor score(const std::string &name, const OodInputs &inputs) const;
  // The calibrated threshold of a score, if any.
  std::optional<double> threshold(const std::string &name) const;
  void set_threshold(const std::string &name, double value) { thresholds_[name] = value; }
  double keep_rate() const { return keep_; }

  // The score the model recommends (cff-train chooses it on its OOD sets); "energy" by default.
  const std::string &recommended() const { return recommended_; }
  void set_recommended(const std::string &name);

  // Serialisation. The scalars go to JSON (the model file's "ood" object: the energy's threshold under
  // "score"/"threshold"/"calibrated" as older files have them, the recommendation under "recommended",
  // every score's threshold under "scores", the complexity slope), the fitted class models to named tensors ("ood/mahalanobis/means",
  // ...). from_json reads older files (score "free_energy", energy only). attach_tensors adds the class
  // models; it throws std::invalid_argument when the JSON lists a score whose tensors are missing or bad.
  nlohmann::json to_json() const;
  static OodDetector from_json(const nlohmann::json &j);
  std::map<std::string, torch::Tensor> tensors() const;
  void attach_tensors(const std::map<std::string, torch::Tensor> &tensors);
  // Throws std::invalid_argument unless the class models fit a network with these sizes (classes K,
  // penultimate features F, moments 2F).
  void check_shapes(int64_t num_classes, int64_t penultimate, int64_t moments) const;
  // The scores the JSON lists (what --info reports, before any tensor is read).
  std::vector<std::string> listed() const;
  int64_t fit_images() const { return fit_images_; }

 private:
  std::vector<std::string> listed_ = {"energy", "msp"};
  GaussianClassModel penultimate_, moments_;
  std::optional<double> complexity_slope_;
  std::map<std::string, double> thresholds_;
  std::string recommended_ = "energy";
  double keep_ = 0.95;
  int64_t fit_images_ = 0;
};

}  // namespace cff
#pragma GCC visibility pop
