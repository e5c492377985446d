#include <cmath>

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "cff/schedule.h"

using cff::CosineSchedule;
using cff::per_sample;

TEST(Schedule, EndpointsAndMonotone) {
  CosineSchedule s;
  EXPECT_DOUBLE_EQ(s.alpha_bar(0), 1.0);
  EXPECT_DOUBLE_EQ(s.alpha_bar(1000), 1e-5);  // clipped floor
  double previous = 1.0;
  for (int t = 1; t <= 1000; ++t) {
    const double a = s.alpha_bar(t);
    EXPECT_LE(a, previous) << "t=" << t;
    EXPECT_GE(a, 1e-5);
    previous = a;
  }
  // Nichol & Dhariwal's value at mid-schedule: cos^2(((0.5 + s) / (1 + s)) pi/2) / cos^2(s/(1+s) pi/2).
  const double off = 0.008, hp = M_PI / 2;
  const double expected = std::pow(std::cos((0.5 + off) / (1 + off) * hp), 2) / std::pow(std::cos(off / (1 + off) * hp), 2);
  EXPECT_NEAR(s.alpha_bar(500), expected, 1e-15);
}

TEST(Schedule, LambdaIsCentripetalNoiseScale) {
  CosineSchedule s;
  for (double t : {1.0, 100.0, 500.0, 900.0}) {
    const double a = s.alpha_bar(t);
    EXPECT_NEAR(s.lambda(t), std::sqrt((1 - a) / a), 1e-12);
  }
  EXPECT_DOUBLE_EQ(s.lambda(0), 0.0);
}

TEST(Schedule, SigmaToTimeRoundTrips) {
  CosineSchedule s;
  for (double sigma : {0.01, 0.1, 0.2, 0.39, 1.0, 5.0, 100.0}) {
    const double t = s.t_for_lambda(sigma);
    EXPECT_NEAR(s.lambda(t), sigma, 1e-9 * std::max(1.0, sigma)) << sigma;
  }
  for (double t : {3.0, 250.0, 640.5, 990.0}) EXPECT_NEAR(s.t_for_lambda(s.lambda(t)), t, 1e-6);
  EXPECT_DOUBLE_EQ(s.t_for_lambda(0.0), 0.0);
  EXPECT_DOUBLE_EQ(s.t_for_lambda(1e9), 1000.0);
}

TEST(Schedule, JsonRoundTripAndValidation) {
  CosineSchedule s(500, 0.01, 1e-4);
  auto back = CosineSchedule::from_json(s.to_json());
  EXPECT_EQ(back.max_time(), 500);
  EXPECT_DOUBLE_EQ(back.alpha_bar(123), s.alpha_bar(123));
  EXPECT_THROW(CosineSchedule(0), std::invalid_argument);
  EXPECT_THROW(CosineSchedule(1000, 0.0), std::invalid_argument);
}

TEST(Schedule, TheCentreShiftsTheProcessAndRoundTrips) {
  CosineSchedule s;
  EXPECT_TRUE(s.centre().empty());
  auto x0 = torch::rand({2, 3, 4, 4}) * 2 - 1, eps = torch::randn({2, 3, 4, 4});
  auto t = torch::tensor({100.0, 700.0}, torch::kDouble);
  const auto a = per_sample(s.alpha_bar(t), x0);
  // Without a centre: the paper's x_t = sqrt(ab) x0 + sqrt(1 - ab) eps.
  EXPECT_LT((s.diffuse(x0, s.alpha_bar(t), eps) - (a.sqrt() * x0 + (1 - a).sqrt() * eps)).abs().max().item<double>(), 1e-6);
  s.set_centre({-0.5, 0.0, 0.25});
  const auto m = torch::tensor({-0.5f, 0.0f, 0.25f}).view({1, 3, 1, 1});
  EXPECT_TRUE(torch::equal(s.centre_like(x0), m));
  EXPECT_LT((s.diffuse(x0, s.alpha_bar(t), eps) - (m + a.sqrt() * (x0 - m) + (1 - a).sqrt() * eps)).abs().max().item<double>(),
            1e-6);
  // Undefined noise: the frame scaled towards the centre; at t = 0 (alpha_bar 1) the frame itself.
  EXPECT_LT((s.diffuse(x0, s.alpha_bar(t), torch::Tensor()) - (m + a.sqrt() * (x0 - m))).abs().max().item<double>(), 1e-6);
  EXPECT_LT((s.diffuse(x0, torch::ones({2}, torch::kDouble), eps) - x0).abs().max().item<double>(), 1e-6);
  auto back = CosineSchedule::from_json(s.to_json());
  EXPECT_EQ(back.centre(), s.centre());
  EXPECT_THROW(s.centre_like(torch::zeros({1, 1, 4, 4})), std::invalid_argument);
  EXPECT_THROW(s.set_centre({1.5}), std::invalid_argument);
  EXPECT_THROW(s.set_centre({NAN}), std::invalid_argument);
  // An all-zero centre is no centre: the file says what the paper's process is.
  s.set_centre({0.0, 0.0, 0.0});
  EXPECT_TRUE(s.centre().empty());
  EXPECT_FALSE(s.to_json().contains("centre"));
}
