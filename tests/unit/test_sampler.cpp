#include <cmath>

#include <gtest/gtest.h>

#include "test_helpers.h"

using namespace cff;

namespace {

LogitsFunction tiny_function() {
  torch::manual_seed(5);
  Classifier net(cff_test::tiny_config(1, 8, 8, 4));
  freeze(*net);
  return [net](const torch::Tensor &x) mutable { return net->forward(x); };
}

// The exact classifier of a two-class Gaussian mixture with means +m and -m and identity
// covariance (per class log-density up to a shared constant). Its LSE is the log-density of the
// mixture, so its force field is exactly known: a closed-form reference for the samplers.
LogitsFunction gaussian_mixture_classifier(const torch::Tensor &mean) {
  return [mean](const torch::Tensor &x) {
    auto flat = x.flatten(1);
    auto m = mean.flatten().unsqueeze(0);
    auto l0 = -0.5 * (flat - m).pow(2).sum(1);
    auto l1 = -0.5 * (flat + m).pow(2).sum(1);
    return torch::stack({l0, l1}, 1);
  };
}

}  // namespace

TEST(Sampler, SameSeedGivesBitIdenticalSamples) {
  auto f = tiny_function();
  CosineSchedule schedule;
  CentripetalOptions options;
  options.steps = 5;
  options.eta = 1.0;
  options.seed = 42;
  options.labels = torch::tensor({0, 1, 2}, torch::kLong);
  auto a = sample_centripetal(f, schedule, 3, {1, 8, 8}, options);
  auto b = sample_centripetal(f, schedule, 3, {1, 8, 8}, options);
  EXPECT_TRUE(torch::equal(a, b));
  options.seed = 43;
  EXPECT_FALSE(torch::equal(a, sample_centripetal(f, schedule, 3, {1, 8, 8}, options)));
}

TEST(Sampler, EtaZeroIsDeterministicGivenTheStart) {
  auto f = tiny_function();
  CosineSchedule schedule;
  auto x = torch::randn({2, 1, 8, 8});
  auto t = torch::full({2}, 700.0, torch::kDouble);
  CentripetalOptions options;
  options.steps = 6;
  options.eta = 0.0;
  options.seed = 1;
  auto a = run_centripetal(f, schedule, x, t, options);
  options.seed = 2;  // seeds only drive step noise, which eta = 0 turns off
  EXPECT_TRUE(torch::equal(a, run_centripetal(f, schedule, x, t, options)));
  options.eta = 1.0;
  EXPECT_FALSE(torch::equal(a, run_centripetal(f, schedule, x, t, options)));
}

TEST(Sampler, LangevinAndAscentAreSeededAndStayInRange) {
  auto f = tiny_function();
  LangevinOptions langevin;
  langevin.steps = 5;
  langevin.seed = 7;
  auto a = sample_langevin(f, 2, {1, 8, 8}, langevin);
  EXPECT_TRUE(torch::equal(a, sample_langevin(f, 2, {1, 8, 8}, langevin)));
  EXPECT_LE(a.abs().max().item<double>(), 1.0);
  AscentOptions ascent;
  ascent.steps = 5;
  ascent.labels = torch::tensor({1, 2}, torch::kLong);
  auto b = sample_ascent(f, 2, {1, 8, 8}, ascent);
  EXPECT_TRUE(torch::equal(b, sample_ascent(f, 2, {1, 8, 8}, ascent)));
  EXPECT_LE(b.abs().max().item<double>(), 1.0);
}

TEST(Sampler, TrajectoryCallbackSeesEveryStep) {
  auto f = tiny_function();
  CentripetalOptions options;
  options.steps = 4;
  int64_t calls = 0;
  options.on_step = [&](int64_t step, const torch::Tensor &x0) {
    EXPECT_EQ(step, calls++);
    EXPECT_EQ(x0.sizes(), (std::vector<int64_t>{1, 1, 8, 8}));
  };
  sample_centripetal(f, CosineSchedule(), 1, {1, 8, 8}, options);
  EXPECT_EQ(calls, 4);
}

TEST(Sampler, OneStepMatchesClosedFormForGaussianMixture) {
  // For the exact mixture classifier the conditional force of class 0 is (x - m)/|x - m|, so one
  // deterministic step from t must return clip((x - sqrt(1 - ab) sqrt(d) (x - m)/|x - m|) / sqrt(ab)).
  auto mean = torch::full({1, 4, 4}, 0.6);
  auto f = gaussian_mixture_classifier(mean);
  CosineSchedule schedule;
  auto x = torch::randn({8, 1, 4, 4}, torch::kFloat32) * 0.7;
  const double t = 300.0, ab = schedule.alpha_bar(t);
  CentripetalOptions options;
  options.steps = 1;
  options.eta = 0.0;
  options.labels = torch::zeros({8}, torch::kLong);
  auto got = run_centripetal(f, schedule, x, torch::full({8}, t, torch::kDouble), options);
  auto direction = (x - mean.unsqueeze(0)) / (x - mean.unsqueeze(0)).flatten(1).norm(2, 1).view({-1, 1, 1, 1});
  auto expected = ((x - std::sqrt(1 - ab) * 4.0 * direction) / std::sqrt(ab)).clamp(-1, 1);
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5);
}

TEST(Sampler, CentripetalStepsReachGaussianMixtureModes) {
  // Many steps from a moderate start walk every conditional sample to its class mean and away
  // from the other class.
  auto mean = torch::full({1, 4, 4}, 0.6);
  auto f = gaussian_mixture_classifier(mean);
  CosineSchedule schedule;
  CentripetalOptions options;
  options.steps = 50;
  options.labels = torch::arange(16, torch::kLong) % 2;
  auto sign = (1 - 2 * options.labels.to(torch::kFloat32)).view({-1, 1, 1, 1});
  for (double eta : {0.0, 1.0}) {
    options.eta = eta;
    auto x = sample_centripetal(f, schedule, 16, {1, 4, 4}, options);
    auto to_mode = (x - sign * mean).flatten(1).norm(2, 1).mean().item<double>();
    auto to_other = (x + sign * mean).flatten(1).norm(2, 1).mean().item<double>();
    std::printf("[sampler] eta %.0f: mean distance to requested mode %.4f, to the other %.4f\n", eta, to_mode, to_other);
    EXPECT_LT(to_mode, 0.1 * to_other);
  }
}

TEST(Sampler, RejectsBadOptions) {
  auto f = tiny_function();
  CentripetalOptions options;
  options.steps = 0;
  EXPECT_THROW(sample_centripetal(f, CosineSchedule(), 1, {1, 8, 8}, options), std::invalid_argument);
  options.steps = 3;
  options.t_start = 5000;
  EXPECT_THROW(sample_centripetal(f, CosineSchedule(), 1, {1, 8, 8}, options), std::invalid_argument);
  options.t_start = 500;
  EXPECT_THROW(sample_centripetal(f, CosineSchedule(), 1, {8, 8}, options), std::invalid_argument);
}

TEST(Denoise, NoiseEstimateRecoversKnownSigma) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto clean = torch::zeros({3, 1, 64, 64});
  clean.slice(2, 16, 48).slice(3, 16, 48).fill_(0.5);  // a flat image with one square
  auto sigma = torch::tensor({0.05f, 0.2f, 0.4f});
  auto noisy = clean + sigma.view({-1, 1, 1, 1}) * torch::randn(clean.sizes(), gen);
  auto estimate = estimate_noise_sigma(noisy);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(estimate[i].item<double>(), sigma[i].item<double>(), 0.1 * sigma[i].item<double>());
  EXPECT_LT(estimate_noise_sigma(clean)[0].item<double>(), 1e-6);
  EXPECT_EQ(estimate_noise_sigma(torch::zeros({1, 1, 2, 2}))[0].item<double>(), 0.0);
}

TEST(Denoise, ZeroSigmaPassesThroughAndNanSigmaThrows) {
  auto f = tiny_function();
  auto x = torch::rand({2, 1, 8, 8}) * 2 - 1;
  auto out = denoise(f, CosineSchedule(), x, torch::zeros({2}));
  EXPECT_TRUE(torch::equal(out, x));
  EXPECT_THROW(denoise(f, CosineSchedule(), x, torch::full({2}, NAN)), std::invalid_argument);
}
