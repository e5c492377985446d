#include <cmath>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
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

// sqrt(d) times the exact class-0 force direction of that mixture.
torch::Tensor mixture_eps_hat(const torch::Tensor &x, const torch::Tensor &mean) {
  auto diff = x - mean.unsqueeze(0);
  return std::sqrt(static_cast<double>(mean.numel())) * diff / diff.flatten(1).norm(2, 1).view({-1, 1, 1, 1});
}

// One deterministic (eta = 0) centripetal step of class 0 of that mixture from t_now to t_next, in
// closed form: eps_hat = sqrt(d) (x - m)/|x - m|; returns {x at t_next, x0 estimate}.
std::pair<torch::Tensor, torch::Tensor> mixture_step(const torch::Tensor &x, const torch::Tensor &mean,
                                                     const CosineSchedule &schedule, double t_now, double t_next) {
  const double a = schedule.alpha_bar(t_now), a_next = schedule.alpha_bar(t_next);
  auto eps_hat = mixture_eps_hat(x, mean);
  auto x0 = ((x - std::sqrt(1 - a) * eps_hat) / std::sqrt(a)).clamp(-1, 1);
  return {std::sqrt(a_next) * x0 + std::sqrt(1 - a_next) * eps_hat, x0};
}

// Deterministic (eta = 0) two-step options requesting class 0 for n samples: the set-up of the
// closed-form tests below.
CentripetalOptions two_deterministic_steps(int64_t n) {
  CentripetalOptions options;
  options.steps = 2;
  options.eta = 0.0;
  options.corrector_steps = 0;
  options.spacing_power = 1.0;  // evenly spaced: from t = 600 the steps stop at 300 and 0
  options.labels = torch::zeros({n}, torch::kLong);
  return options;
}

// Mean distance of conditional samples to their requested mode (+m for class 0, -m for class 1) and to
// the other one.
std::pair<double, double> mode_distances(const torch::Tensor &x, const torch::Tensor &labels,
                                         const torch::Tensor &mean) {
  auto sign = (1 - 2 * labels.to(torch::kFloat32)).view({-1, 1, 1, 1});
  return {(x - sign * mean).flatten(1).norm(2, 1).mean().item<double>(),
          (x + sign * mean).flatten(1).norm(2, 1).mean().item<double>()};
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
  options.corrector_steps = 0;  // the corrector draws noise too
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
  // With a schedule centre c the step is the same closed form on x - c (the network still sees x), and
  // the clip is to [-1, 1] in image units.
  auto mean = torch::full({1, 4, 4}, 0.6);
  auto f = gaussian_mixture_classifier(mean);
  for (const double c : {0.0, -0.7}) {
    CosineSchedule schedule;
    schedule.set_centre({c});
    auto x = torch::randn({8, 1, 4, 4}, torch::kFloat32) * 0.7 + c;
    const double t = 300.0, ab = schedule.alpha_bar(t);
    CentripetalOptions options;
    options.steps = 1;
    options.eta = 0.0;
    options.labels = torch::zeros({8}, torch::kLong);
    auto got = run_centripetal(f, schedule, x, torch::full({8}, t, torch::kDouble), options);
    auto direction = (x - mean.unsqueeze(0)) / (x - mean.unsqueeze(0)).flatten(1).norm(2, 1).view({-1, 1, 1, 1});
    auto expected = (c + (x - c - std::sqrt(1 - ab) * 4.0 * direction) / std::sqrt(ab)).clamp(-1, 1);
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5) << "centre " << c;
  }
}

TEST(Sampler, TheStartIsTheCentrePlusTheSeedsNoise) {
  CosineSchedule centred, plain;
  centred.set_centre({-0.7});
  EXPECT_LT((centripetal_start(centred, 3, {1, 4, 4}, 9) - centripetal_start(plain, 3, {1, 4, 4}, 9) + 0.7)
                .abs().max().item<double>(), 1e-6);
}

TEST(Sampler, CentripetalStepsReachGaussianMixtureModes) {
  // Many steps from a moderate start (t = 800) walk every conditional sample to its class mean and away
  // from the other class. The start is pinned: from t = T (the default) the deterministic path (eta 0) on
  // this 16-pixel mixture stops about 1.7 from the mode, since x_0 estimates at alpha_bar ~ 0 are clipped.
  auto mean = torch::full({1, 4, 4}, 0.6);
  auto f = gaussian_mixture_classifier(mean);
  CosineSchedule schedule;
  CentripetalOptions options;
  options.steps = 50;
  options.t_start = 800.0;
  options.labels = torch::arange(16, torch::kLong) % 2;
  for (double eta : {0.0, 1.0}) {
    options.eta = eta;
    options.corrector_steps = 0;
    auto x = sample_centripetal(f, schedule, 16, {1, 4, 4}, options);
    const auto [to_mode, to_other] = mode_distances(x, options.labels, mean);
    std::printf("[sampler] eta %.0f: mean distance to requested mode %.4f, to the other %.4f\n", eta, to_mode, to_other);
    EXPECT_LT(to_mode, 0.1 * to_other);
  }
}

TEST(Sampler, SpacingPowerMovesTheIntermediateTimesTowardTheData) {
  // Two steps from t = 600: spacing power 2 stops at 600 * (1/2)^2 = 150 instead of 300.
  auto mean = torch::full({1, 4, 4}, 0.6);
  auto f = gaussian_mixture_classifier(mean);
  CosineSchedule schedule;
  auto x = torch::randn({6, 1, 4, 4}, torch::kFloat32) * 0.8;
  auto options = two_deterministic_steps(6);
  const auto t = torch::full({6}, 600.0, torch::kDouble);
  for (double power : {1.0, 2.0}) {
    options.spacing_power = power;
    auto got = run_centripetal(f, schedule, x, t, options);
    const double t_mid = 600.0 * std::pow(0.5, power);
    auto mid = mixture_step(x, mean, schedule, 600.0, t_mid).first;
    auto expected = mixture_step(mid, mean, schedule, t_mid, 0.0).second;
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4) << "spacing power " << power;
  }
}

TEST(Sampler, CorrectorStepFollowsTheScaledForceWithSeededNoise) {
  // Two deterministic steps with one corrector step between them: after the first step (t = 300)
  // x <- x - 2 r^2 sqrt(1 - ab) eps_hat + 2 r sqrt(1 - ab) z, with z the first draw of the seed's
  // generator (eta = 0 draws no step noise). No corrector after the last step.
  auto mean = torch::full({1, 4, 4}, 0.6);
  auto f = gaussian_mixture_classifier(mean);
  CosineSchedule schedule;
  auto x = torch::randn({5, 1, 4, 4}, torch::kFloat32) * 0.8;
  auto options = two_deterministic_steps(5);
  options.seed = 11;
  options.corrector_steps = 1;
  options.corrector_snr = 0.15;
  auto got = run_centripetal(f, schedule, x, torch::full({5}, 600.0, torch::kDouble), options);

  auto mid = mixture_step(x, mean, schedule, 600.0, 300.0).first;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto z = torch::randn(mid.sizes(), gen, torch::kFloat32);
  const double r = 0.15, s = std::sqrt(1 - schedule.alpha_bar(300.0));
  mid = mid - 2 * r * r * s * mixture_eps_hat(mid, mean) + 2 * r * s * z;
  auto expected = mixture_step(mid, mean, schedule, 300.0, 0.0).second;
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4);
}

TEST(Sampler, CorrectorStepsStillReachGaussianMixtureModes) {
  auto mean = torch::full({1, 4, 4}, 0.6);
  auto f = gaussian_mixture_classifier(mean);
  CentripetalOptions options;
  options.steps = 20;
  options.corrector_steps = 2;
  options.spacing_power = 2.0;
  options.labels = torch::arange(16, torch::kLong) % 2;
  auto x = sample_centripetal(f, CosineSchedule(), 16, {1, 4, 4}, options);
  const auto [to_mode, to_other] = mode_distances(x, options.labels, mean);
  EXPECT_LT(to_mode, 0.1 * to_other);
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
  options.spacing_power = 0.0;
  EXPECT_THROW(sample_centripetal(f, CosineSchedule(), 1, {1, 8, 8}, options), std::invalid_argument);
  options.spacing_power = 1.0;
  options.corrector_steps = -1;
  EXPECT_THROW(sample_centripetal(f, CosineSchedule(), 1, {1, 8, 8}, options), std::invalid_argument);
  options.corrector_steps = 1;
  options.corrector_snr = std::nan("");
  EXPECT_THROW(sample_centripetal(f, CosineSchedule(), 1, {1, 8, 8}, options), std::invalid_argument);
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

// The sampler names and settings every caller shares (sampler_defaults.h): one name per kind both ways,
// an unknown name is an error naming the known ones, and validation names the first bad setting.
TEST(SamplerSettings, NamesRoundTripAndBadSettingsAreNamed) {
  ASSERT_EQ(sampler_names(), (std::vector<std::string>{"centripetal", "langevin", "ascent"}));
  for (const auto &name : sampler_names()) EXPECT_EQ(sampler_name(parse_sampler(name)), name);
  try {
    parse_sampler("sgld");
    FAIL() << "an unknown sampler was accepted";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("'sgld'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("centripetal, langevin or ascent"), std::string::npos) << e.what();
  }
  const SamplerSettings defaults;
  EXPECT_EQ(defaults.steps, CentripetalDefaults::steps);
  EXPECT_EQ(defaults.t_start, CentripetalDefaults::t_start);
  EXPECT_NO_THROW(defaults.validate(1000));
  auto expect_bad = [](SamplerSettings s, const std::string &field) {
    try {
      s.validate(1000);
      FAIL() << field << " was accepted";
    } catch (const std::invalid_argument &e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  SamplerSettings s;
  s.t_start = 1500;  // above the schedule's T
  expect_bad(s, "t_start must be in (0, 1000]");
  s = {};
  s.steps = 0;
  expect_bad(s, "steps");
  s = {};
  s.corrector_snr = 0;
  expect_bad(s, "corrector SNR");
  s = {};
  s.guidance = -1;
  expect_bad(s, "guidance");
  // The baselines ignore the centripetal fields and accept zero steps.
  s = {};
  s.sampler = SamplerKind::langevin;
  s.steps = 0;
  s.t_start = -5;
  EXPECT_NO_THROW(s.validate(1000));
  // centripetal_options carries every centripetal field.
  s = {};
  s.steps = 7;
  s.eta = 0.25;
  s.t_start = 640;
  s.guidance = 2;
  s.spacing_power = 1.5;
  s.corrector_steps = 3;
  s.corrector_snr = 0.3;
  const auto o = centripetal_options(s, 99);
  EXPECT_EQ(o.steps, 7);
  EXPECT_EQ(o.eta, 0.25);
  EXPECT_EQ(o.t_start, 640);
  EXPECT_EQ(o.guidance, 2);
  EXPECT_EQ(o.spacing_power, 1.5);
  EXPECT_EQ(o.corrector_steps, 3);
  EXPECT_EQ(o.corrector_snr, 0.3);
  EXPECT_EQ(o.seed, 99u);
}
