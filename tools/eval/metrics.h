// The figures cff-eval reports that libcff does not already compute: calibration, the confusion matrix,
// ROC curve points, the Fréchet distance between feature sets, PSNR and SSIM.
//
// Everything here is plain maths on CPU tensors (any floating dtype in, double precision inside), so the
// tests can check each figure on hand-made inputs.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace cff::eval {

struct CalibrationBin {
  int64_t count = 0;
  double confidence = 0;  // mean max-softmax probability of the bin's samples
  double accuracy = 0;    // fraction of them classified correctly
};

struct Calibration {
  double ece = 0;  // sum_b (count_b / N) * |accuracy_b - confidence_b|
  std::vector<CalibrationBin> bins;
};

// Expected calibration error of softmax confidences with `bins` equal-width bins on [0, 1]
// (a confidence of exactly 1 falls in the last bin). probabilities: [N, K]; labels: int64 [N].
// Throws std::invalid_argument on mismatched shapes, N = 0 or bins < 1.
Calibration expected_calibration_error(const torch::Tensor &probabilities, const torch::Tensor &labels,
                                       int64_t bins = 15);

// counts[true][predicted]: int64 [K, K].
torch::Tensor confusion_matrix(const torch::Tensor &predicted, const torch::Tensor &labels, int64_t num_classes);

// The ROC curve with OOD as the positive class: a point (false-positive rate, true-positive rate) for
// every distinct threshold, from (0, 0) to (1, 1). At most max_points points (evenly thinned, ends kept).
struct RocCurve {
  std::vector<double> false_positive_rate, true_positive_rate;
};
RocCurve roc_curve(const std::vector<double> &in_scores, const std::vector<double> &out_scores,
                   size_t max_points = 1000);

// Mean [F] and covariance [F, F] (unbiased) of features [N, F], in double precision.
struct GaussianStatistics {
  torch::Tensor mean, covariance;
};
GaussianStatistics gaussian_statistics(const torch::Tensor &features);

// Symmetric positive semi-definite square root through an eigen-decomposition (negative eigenvalues,
// from rounding, are clipped to zero). Double precision.
torch::Tensor psd_sqrt(const torch::Tensor &matrix);

// Fréchet distance between two Gaussians (the FID formula):
// ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
// The symmetric form of the cross term keeps every square root that of a PSD matrix.
double frechet_distance(const GaussianStatistics &a, const GaussianStatistics &b);

// Peak signal-to-noise ratio per image in dB for images in [0, peak]: [N] double. a, b: [N, C, H, W].
torch::Tensor psnr(const torch::Tensor &a, const torch::Tensor &b, double peak = 255.0);

// Structural similarity per image (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5 (shrunk to the
// image when it is smaller), C1 = (0.01 peak)^2, C2 = (0.03 peak)^2, averaged over the valid window
// positions and the channels. a, b: [N, C, H, W] in [0, peak]; returns [N] double.
torch::Tensor ssim(const torch::Tensor &a, const torch::Tensor &b, double peak = 255.0);

// Mean L2 distance over all pairs of distinct images of x [N, ...] (flattened): the diversity measure of
// issue 9, compared between samples and real images of a class. NaN for fewer than two images.
double mean_pairwise_distance(const torch::Tensor &x);

}  // namespace cff::eval
