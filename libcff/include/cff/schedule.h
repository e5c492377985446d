// The cosine noise schedule (Nichol & Dhariwal 2021) and its centripetal form (paper eq. 15).
// Time is continuous in [0, T]; integer t reproduces the usual discrete schedule.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace cff {

class CosineSchedule {
 public:
  // T steps, offset s, and the clip floor of alpha_bar.
  explicit CosineSchedule(int64_t steps = 1000, double offset = 0.008, double min_alpha_bar = 1e-5);

  int64_t steps() const { return steps_; }
  double offset() const { return offset_; }
  double min_alpha_bar() const { return min_alpha_bar_; }

  // alpha_bar(t) in [min_alpha_bar, 1], decreasing; alpha_bar(0) = 1. t is clamped to [0, T].
  double alpha_bar(double t) const;
  // lambda_t = sqrt(1 - alpha_bar) / sqrt(alpha_bar): x_t / sqrt(alpha_bar) = x_0 + lambda_t * eps.
  double lambda(double t) const;
  // Inverse of lambda(t): the t* whose lambda equals the given noise level (in [-1, 1] image units).
  // Levels beyond lambda(T) map to T; levels <= 0 map to 0.
  double t_for_lambda(double noise_level) const;

  nlohmann::json to_json() const;
  static CosineSchedule from_json(const nlohmann::json &j);

 private:
  int64_t steps_;
  double offset_;
  double min_alpha_bar_;
};

}  // namespace cff
