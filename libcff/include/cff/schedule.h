// The cosine noise schedule (Nichol & Dhariwal 2021) and its centripetal form (paper eq. 15).
// Time is continuous in [0, T]; integer t reproduces the usual discrete schedule.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

class CosineSchedule {
 public:
  // The horizon T (t runs over [0, T]; the model file's "steps"), offset s, and the clip floor of alpha_bar.
  // T is the schedule's, not a sampler's: a sampler walks from t_start <= T to 0 in its own S steps.
  explicit CosineSchedule(int64_t max_time = 1000, double offset = 0.008, double min_alpha_bar = 1e-5);

  int64_t max_time() const { return max_time_; }
  double offset() const { return offset_; }
  double min_alpha_bar() const { return min_alpha_bar_; }

  // alpha_bar(t) in [min_alpha_bar, 1], decreasing; alpha_bar(0) = 1. t is clamped to [0, T].
  double alpha_bar(double t) const;
  // alpha_bar at every element of t (any shape, dtype and device): a double tensor of t's shape on the
  // CPU, each value alpha_bar(double). Training, sampling and denoising look the schedule up here.
  torch::Tensor alpha_bar(const torch::Tensor &t) const;
  // lambda_t = sqrt(1 - alpha_bar) / sqrt(alpha_bar): x_t / sqrt(alpha_bar) = x_0 + lambda_t * eps.
  double lambda(double t) const;
  // Inverse of lambda(t): the t* whose lambda equals the given noise level (in [-1, 1] image units).
  // Levels beyond lambda(T) map to T; levels <= 0 map to 0.
  double t_for_lambda(double noise_level) const;

  // The centre m of the noise process, one value per channel (empty = 0, the paper's process):
  // x_t = m + sqrt(alpha_bar) (x_0 - m) + sqrt(1 - alpha_bar) eps, so x_T ~ N(m, I). cff-train sets it to the
  // training images' mean per channel: a network with GroupNorm hardly feels an image's overall brightness,
  // and around 0 its samples of dark (or bright) data drift towards mid-grey (docs/method.md, "The centre").
  const std::vector<double> &centre() const { return centre_; }
  // Throws std::invalid_argument unless every value is finite and in [-1, 1].
  void set_centre(std::vector<double> centre);
  // m as a float32 [1, C, 1, 1] tensor on `like`'s device ([N, C, H, W]; zeros when no centre is set).
  // Throws std::invalid_argument if `like` has another number of channels than the centre.
  torch::Tensor centre_like(const torch::Tensor &like) const;
  // The forward process: x_t from x_0 [N, C, H, W], per-sample alpha_bar [N] (double, as alpha_bar(t) gives)
  // and noise eps of x_0's shape (undefined = no noise: the frame scaled towards the centre).
  torch::Tensor diffuse(const torch::Tensor &x0, const torch::Tensor &alpha_bar, const torch::Tensor &eps) const;

  nlohmann::json to_json() const;
  static CosineSchedule from_json(const nlohmann::json &j);

 private:
  int64_t max_time_;
  double offset_;
  double min_alpha_bar_;
  std::vector<double> centre_;
};

// Per-sample values [N] (any dtype and device) as a float32 [N, 1, 1, 1] tensor on `like`'s device, to
// scale a batch of images [N, C, H, W].
torch::Tensor per_sample(const torch::Tensor &values, const torch::Tensor &like);

}  // namespace cff
#pragma GCC visibility pop
