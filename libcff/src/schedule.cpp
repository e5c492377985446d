#include "cff/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace cff {

CosineSchedule::CosineSchedule(int64_t max_time, double offset, double min_alpha_bar)
    : max_time_(max_time), offset_(offset), min_alpha_bar_(min_alpha_bar) {
  if (max_time < 1) throw std::invalid_argument("schedule: steps (the horizon T) must be >= 1");
  if (!(offset > 0.0 && offset < 1.0)) throw std::invalid_argument("schedule: offset must be in (0, 1)");
  if (!(min_alpha_bar > 0.0 && min_alpha_bar < 1.0)) throw std::invalid_argument("schedule: min_alpha_bar must be in (0, 1)");
}

double CosineSchedule::alpha_bar(double t) const {
  t = std::clamp(t, 0.0, static_cast<double>(max_time_));
  const double half_pi = M_PI / 2.0;
  auto f = [&](double tau) {
    const double c = std::cos((tau / static_cast<double>(max_time_) + offset_) / (1.0 + offset_) * half_pi);
    return c * c;
  };
  return std::clamp(f(t) / f(0.0), min_alpha_bar_, 1.0);
}

torch::Tensor CosineSchedule::alpha_bar(const torch::Tensor &t) const {
  auto times = t.to(torch::kCPU, torch::kDouble).contiguous();
  auto out = torch::empty_like(times);
  const auto *in = times.data_ptr<double>();
  auto *values = out.data_ptr<double>();
  for (int64_t i = 0; i < times.numel(); ++i) values[i] = alpha_bar(in[i]);
  return out;
}

torch::Tensor per_sample(const torch::Tensor &values, const torch::Tensor &like) {
  return values.to(torch::kCPU, torch::kFloat32).reshape({-1, 1, 1, 1}).to(like.device());
}

double CosineSchedule::lambda(double t) const {
  const double a = alpha_bar(t);
  return std::sqrt(1.0 - a) / std::sqrt(a);
}

double CosineSchedule::t_for_lambda(double noise_level) const {
  if (!(noise_level > 0.0)) return 0.0;
  const double top = static_cast<double>(max_time_);
  if (noise_level >= lambda(top)) return top;
  // lambda is increasing in t, so bisect; 60 halvings reach double precision on [0, T].
  double lo = 0.0, hi = top;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (lambda(mid) < noise_level ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

void CosineSchedule::set_centre(std::vector<double> centre) {
  for (double v : centre) {
    if (!(std::isfinite(v) && v >= -1.0 && v <= 1.0)) {
      throw std::invalid_argument("schedule: every centre value must be in [-1, 1], got " + std::to_string(v));
    }
  }
  if (std::all_of(centre.begin(), centre.end(), [](double v) { return v == 0.0; })) centre.clear();
  centre_ = std::move(centre);
}

torch::Tensor CosineSchedule::centre_like(const torch::Tensor &like) const {
  const int64_t channels = like.dim() >= 2 ? like.size(1) : 0;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(like.device());
  if (centre_.empty()) return torch::zeros({1, channels, 1, 1}, options);
  if (like.dim() != 4 || channels != static_cast<int64_t>(centre_.size())) {
    throw std::invalid_argument("schedule: the centre has " + std::to_string(centre_.size()) +
                                " channels, the images " + std::to_string(channels));
  }
  return torch::tensor(centre_, torch::kDouble).to(options).view({1, channels, 1, 1});
}

torch::Tensor CosineSchedule::diffuse(const torch::Tensor &x0, const torch::Tensor &alpha_bar,
                                      const torch::Tensor &eps) const {
  const auto a = per_sample(alpha_bar, x0);
  const auto m = centre_like(x0);
  auto x_t = m + a.sqrt() * (x0 - m);
  if (eps.defined()) x_t = x_t + (1.0 - a).sqrt() * eps;
  return x_t;
}

nlohmann::json CosineSchedule::to_json() const {
  nlohmann::json j = {{"type", "cosine"}, {"steps", max_time_}, {"offset", offset_}, {"min_alpha_bar", min_alpha_bar_}};
  if (!centre_.empty()) j["centre"] = centre_;  // files without it (and older files) have the centre 0
  return j;
}

CosineSchedule CosineSchedule::from_json(const nlohmann::json &j) {
  try {
    if (j.value("type", std::string("cosine")) != "cosine") {
      throw std::invalid_argument("schedule type '" + j.at("type").get<std::string>() + "' is not supported");
    }
    CosineSchedule schedule(j.at("steps").get<int64_t>(), j.at("offset").get<double>(), j.at("min_alpha_bar").get<double>());
    if (j.contains("centre")) schedule.set_centre(j.at("centre").get<std::vector<double>>());
    return schedule;
  } catch (const nlohmann::json::exception &e) {
    throw std::invalid_argument(std::string("schedule: ") + e.what());
  }
}

}  // namespace cff
