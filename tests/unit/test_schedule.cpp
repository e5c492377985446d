#include <cmath>

#include <gtest/gtest.h>

#include "cff/schedule.h"

using cff::CosineSchedule;

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
