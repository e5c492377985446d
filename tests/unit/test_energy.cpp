#include <cmath>

#include <gtest/gtest.h>

#include "test_helpers.h"

using namespace cff;

namespace {

struct DoubleNet {
  Classifier net{nullptr};
  LogitsFunction f;
  DoubleNet() {
    torch::manual_seed(1);
    net = Classifier(cff_test::tiny_config(1, 6, 6, 3));
    net->to(torch::kDouble);
    freeze(*net);
    auto n = net;
    f = [n](const torch::Tensor &x) mutable { return n->forward(x); };
  }
};

// Central finite-difference gradient of a scalar function of one image.
torch::Tensor finite_difference(const std::function<double(const torch::Tensor &)> &scalar, const torch::Tensor &x,
                                double h = 1e-5) {
  auto grad = torch::zeros_like(x);
  auto flat = x.flatten();
  auto gflat = grad.flatten();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    auto plus = x.clone(), minus = x.clone();
    plus.flatten()[i] += h;
    minus.flatten()[i] -= h;
    gflat[i] = (scalar(plus) - scalar(minus)) / (2 * h);
  }
  return grad.view_as(x);
}

torch::Tensor unit(const torch::Tensor &g) { return g / g.flatten(1).norm(2, 1).view({-1, 1, 1, 1}); }

}  // namespace

TEST(Energy, FreeEnergyIsNegativeLogSumExp) {
  auto logits = torch::tensor({{1.0, 2.0, 3.0}, {0.0, 0.0, 0.0}}, torch::kDouble);
  auto u = free_energy(logits);
  EXPECT_NEAR(u[0].item<double>(), -std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-12);
  EXPECT_NEAR(u[1].item<double>(), -std::log(3.0), 1e-12);
  auto p = class_posterior(logits);
  EXPECT_NEAR(p.sum(1)[0].item<double>(), 1.0, 1e-12);
}

TEST(Energy, UnconditionalForceMatchesFiniteDifferenceOfFreeEnergy) {
  DoubleNet m;
  auto x = torch::randn({1, 1, 6, 6}, torch::kDouble) * 0.5;
  auto force = force_direction(m.f, x);
  auto energy = [&](const torch::Tensor &z) { return free_energy(m.f(z)).item<double>(); };
  // u = -grad LSE / |grad LSE| = grad U / |grad U|.
  auto expected = unit(finite_difference(energy, x));
  EXPECT_LT((force.direction - expected).abs().max().item<double>(), 1e-6);
}

TEST(Energy, ConditionalForceMatchesFiniteDifferenceOfClassLogit) {
  DoubleNet m;
  auto x = torch::randn({1, 1, 6, 6}, torch::kDouble) * 0.5;
  ForceOptions options;
  options.labels = torch::tensor({2}, torch::kLong);
  auto force = force_direction(m.f, x, options);
  auto logit = [&](const torch::Tensor &z) { return m.f(z)[0][2].item<double>(); };
  auto expected = -unit(finite_difference(logit, x));
  EXPECT_LT((force.direction - expected).abs().max().item<double>(), 1e-6);
}

TEST(Energy, ScaledDirectionHasNormSqrtD) {
  DoubleNet m;
  auto x = torch::randn({5, 1, 6, 6}, torch::kDouble);
  auto force = force_direction(m.f, x);
  auto eps_hat = std::sqrt(36.0) * force.direction;
  auto norms = eps_hat.flatten(1).norm(2, 1);
  for (int64_t i = 0; i < 5; ++i) EXPECT_NEAR(norms[i].item<double>(), 6.0, 1e-10);
}

TEST(Energy, GuidanceZeroAndOneAreUnconditionalAndConditional) {
  DoubleNet m;
  auto x = torch::randn({4, 1, 6, 6}, torch::kDouble);
  auto labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  auto unconditional = force_direction(m.f, x).direction;
  ForceOptions conditional_options;
  conditional_options.labels = labels;
  auto conditional = force_direction(m.f, x, conditional_options).direction;
  ForceOptions w0 = conditional_options, w1 = conditional_options;
  w0.guidance = 0.0;
  w1.guidance = 1.0;
  EXPECT_TRUE(torch::equal(force_direction(m.f, x, w0).direction, unconditional));
  EXPECT_TRUE(torch::equal(force_direction(m.f, x, w1).direction, conditional));
  // A guide classifier that is f itself at w = 1 gives grad LSE + grad log p = grad f_y.
  ForceOptions guided = w1;
  guided.guide = m.f;
  EXPECT_LT((force_direction(m.f, x, guided).direction - conditional).abs().max().item<double>(), 1e-10);
  // Intermediate w lies between the two (not equal to either).
  ForceOptions w_half = conditional_options;
  w_half.guidance = 0.5;
  auto half = force_direction(m.f, x, w_half).direction;
  EXPECT_FALSE(torch::allclose(half, unconditional));
  EXPECT_FALSE(torch::allclose(half, conditional));
}

TEST(Energy, PerSampleForcesDoNotDependOnTheBatch) {
  DoubleNet m;
  auto x = torch::randn({3, 1, 6, 6}, torch::kDouble);
  auto batched = force_direction(m.f, x).direction;
  auto single = force_direction(m.f, x.slice(0, 1, 2)).direction;
  EXPECT_LT((batched.slice(0, 1, 2) - single).abs().max().item<double>(), 1e-12);
}

// Training mixes conditional and unconditional samples in one batch through the mask; the ascent baseline
// follows log p(y|x) alone. Both checked against finite differences of the scalar they claim.
TEST(Energy, UnconditionalMaskAndLogPosteriorMatchFiniteDifferences) {
  DoubleNet m;
  auto x = torch::randn({2, 1, 6, 6}, torch::kDouble) * 0.5;
  ForceOptions masked;
  masked.labels = torch::tensor({2, 1}, torch::kLong);
  masked.unconditional = torch::tensor({true, false});
  auto force = force_direction(m.f, x, masked);
  auto lse0 = [&](const torch::Tensor &z) { return -free_energy(m.f(z))[0].item<double>(); };
  auto logit1 = [&](const torch::Tensor &z) { return m.f(z)[1][1].item<double>(); };
  EXPECT_LT((force.direction[0] + unit(finite_difference(lse0, x))[0]).abs().max().item<double>(), 1e-6);
  EXPECT_LT((force.direction[1] + unit(finite_difference(logit1, x))[1]).abs().max().item<double>(), 1e-6);
  ForceOptions posterior;
  posterior.labels = torch::tensor({0, 2}, torch::kLong);
  posterior.log_posterior_only = true;
  auto log_p = [&](const torch::Tensor &z) {
    auto lp = torch::log_softmax(m.f(z), 1);
    return (lp[0][0] + lp[1][2]).item<double>();
  };
  auto g = potential_gradient(m.f, x, posterior).gradient;
  EXPECT_LT((g - finite_difference(log_p, x)).abs().max().item<double>(), 1e-6);
  ForceOptions short_mask = masked;
  short_mask.unconditional = torch::tensor({true});
  EXPECT_THROW(force_direction(m.f, x, short_mask), std::invalid_argument);
}

TEST(Energy, MismatchedLabelCountThrows) {
  DoubleNet m;
  ForceOptions options;
  options.labels = torch::tensor({0, 1}, torch::kLong);
  EXPECT_THROW(force_direction(m.f, torch::zeros({3, 1, 6, 6}, torch::kDouble), options), std::invalid_argument);
}

TEST(Network, ShapesForGrayAndColourInputs) {
  for (auto config : {cff_test::tiny_config(1, 28, 28, 10), cff_test::tiny_config(3, 32, 32, 10)}) {
    Classifier net(config);
    auto logits = net->forward(torch::randn({2, config.channels, config.height, config.width}));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 10}));
    EXPECT_EQ(net->features(torch::randn({2, config.channels, config.height, config.width})).size(1), 16);
  }
}

// cff-train's --widths auto: the recipe's three stages up to 32x32, one more stage per doubling above, so the
// last stage's maps stay at most 8 pixels a side whatever the input size.
TEST(Network, DefaultWidthsFollowTheImageSize) {
  using W = std::vector<int64_t>;
  EXPECT_EQ(default_widths(28, 28), (W{32, 64, 128}));
  EXPECT_EQ(default_widths(16, 16), (W{32, 64, 128}));
  EXPECT_EQ(default_widths(32, 32), (W{32, 64, 128}));
  EXPECT_EQ(default_widths(33, 20), (W{32, 64, 128, 256}));  // the larger side decides
  EXPECT_EQ(default_widths(48, 64), (W{32, 64, 128, 256}));
  EXPECT_EQ(default_widths(128, 128), (W{32, 64, 128, 256, 256}));
  EXPECT_EQ(default_widths(1024, 1024).size(), 8u);  // 1024 / 2^7 = 8
  EXPECT_THROW(default_widths(0, 28), std::invalid_argument);
  for (int64_t side : {28, 32, 40, 64, 100, 128, 1024}) {
    auto config = cff_test::tiny_config(3, side, side, 10);
    config.widths = default_widths(side, side);
    EXPECT_NO_THROW(config.validate()) << side;
    const auto text = describe_widths(config);
    const auto last = std::stoi(text.substr(text.rfind(' ') + 1));  // "... maps are 8x8)"
    EXPECT_LE(last, 8) << text;
    EXPECT_GT(last, side >= 32 ? 4 : 3) << text;  // and no stage more than needed
  }
  auto config = cff_test::tiny_config(3, 64, 64, 4);
  config.widths = default_widths(64, 64);
  EXPECT_EQ(describe_widths(config), "32,64,128,256 (4 stages: the last one's maps are 8x8)");
  Classifier net(config);
  EXPECT_EQ(net->forward(torch::randn({2, 3, 64, 64})).sizes(), (std::vector<int64_t>{2, 4}));
}

TEST(Network, ConfigRoundTripsAndRejectsBadValues) {
  auto config = cff_test::tiny_config(3, 32, 32, 10);
  config.activation = "gelu";
  auto back = NetworkConfig::from_json(config.to_json());
  EXPECT_EQ(back.to_json(), config.to_json());
  auto bad = config.to_json();
  bad["activation"] = "relu";
  EXPECT_THROW(NetworkConfig::from_json(bad), std::invalid_argument);
  bad = config.to_json();
  bad.erase("widths");
  EXPECT_THROW(NetworkConfig::from_json(bad), std::invalid_argument);
}

TEST(Network, FrozenNetworksGiveTheSameLogitsAndInputGradientsThroughTheFastConvolution) {
  torch::manual_seed(3);
  auto config = cff_test::tiny_config(1, 28, 28, 10);
  config.widths = {16, 32, 64};
  Classifier trainable(config), frozen(config);
  torch::NoGradGuard no_grad;
  auto source = trainable->parameters(), target = frozen->parameters();
  for (size_t i = 0; i < source.size(); ++i) target[i].copy_(source[i]);
  freeze(*frozen);
  // Batch 1 and batch 5: LibTorch sends a single small image to its own kernel, the fast path does not.
  for (int64_t n : {1, 5}) {
    auto x = torch::randn({n, 1, 28, 28});
    torch::Tensor a, b, ga, gb;
    {
      torch::AutoGradMode grad(true);
      auto xa = x.clone().requires_grad_(true), xb = x.clone().requires_grad_(true);
      a = trainable->forward(xa);
      b = frozen->forward(xb);
      ga = torch::autograd::grad({torch::logsumexp(a, 1).sum()}, {xa})[0];
      gb = torch::autograd::grad({torch::logsumexp(b, 1).sum()}, {xb})[0];
    }
    EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-5)) << "batch " << n << ": " << (a - b).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(ga, gb, 1e-3, 1e-5)) << "batch " << n << ": " << (ga - gb).abs().max().item<float>();
  }
}

TEST(Loss, ForceFractionNoisesAPrefixOfTheBatch) {
  DoubleNet d;
  torch::manual_seed(3);
  auto x = torch::rand({8, 1, 6, 6}, torch::kDouble) * 2 - 1;
  auto y = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kLong);
  const CosineSchedule schedule;
  CffLossOptions half;
  half.force_fraction = 0.5;
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(11);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(11);
  // Half of a batch of 8 is the same draw, on the same images, as all of its first 4.
  auto part = cff_loss(d.f, x, y, schedule, half, g1);
  auto prefix = cff_loss(d.f, x.narrow(0, 0, 4), y.narrow(0, 0, 4), schedule, CffLossOptions{}, g2);
  EXPECT_NEAR(part.force.item<double>(), prefix.force.item<double>(), 1e-12);
  EXPECT_NEAR(part.ce_noisy.item<double>(), prefix.ce_noisy.item<double>(), 1e-12);
  EXPECT_EQ(part.logits_clean.size(0), 8);  // the clean CE still sees the whole batch
  EXPECT_GT(std::abs(part.ce_clean.item<double>() - prefix.ce_clean.item<double>()), 1e-9);
  for (double bad : {0.0, -0.5, 1.5, std::nan("")}) {
    CffLossOptions o;
    o.force_fraction = bad;
    EXPECT_THROW(cff_loss(d.f, x, y, schedule, o), std::invalid_argument) << bad;
  }
}

// The loss's force term is the library's force: redraw the loss's random numbers from the same seed and
// compare with eps_hat built from finite differences of LSE (unconditional draws) or f_y.
TEST(Loss, ForceTermMatchesTheForceOfFiniteDifferences) {
  DoubleNet d;
  torch::manual_seed(7);
  const int64_t n = 6;
  auto x = torch::rand({n, 1, 6, 6}, torch::kDouble) * 2 - 1;
  auto y = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  const CosineSchedule schedule;
  CffLossOptions options;
  options.p_uncond = 0.5;
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(21);
  auto terms = cff_loss(d.f, x, y, schedule, options, g1);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(21);
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat32);
  auto t = torch::randint(1, schedule.max_time() + 1, {n}, g2, cpu.dtype(torch::kLong));
  auto eps = torch::randn({n, 1, 6, 6}, g2, cpu).to(torch::kDouble);
  auto uncond = torch::rand({n}, g2, cpu) < options.p_uncond;
  ASSERT_GT(uncond.sum().item<int64_t>(), 0);
  ASSERT_LT(uncond.sum().item<int64_t>(), n);
  double expected = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double ab = static_cast<float>(schedule.alpha_bar(static_cast<double>(t[i].item<int64_t>())));
    auto xt = (std::sqrt(ab) * x[i] + std::sqrt(1.0 - ab) * eps[i]).unsqueeze(0);
    const int64_t label = y[i].item<int64_t>();
    const bool u = uncond[i].item<bool>();
    auto potential = [&](const torch::Tensor &z) {
      auto logits = d.f(z);
      return u ? torch::logsumexp(logits, 1).item<double>() : logits[0][label].item<double>();
    };
    auto eps_hat = -6.0 * unit(finite_difference(potential, xt));
    expected += (eps_hat[0] - eps[i]).pow(2).sum().item<double>() / 36.0;
  }
  EXPECT_NEAR(terms.force.item<double>(), expected / n, 1e-5);
}

// shuffled_patches moves whole 4 x 4 grid cells (same pixels, other places) and never returns the input.
TEST(Loss, ShuffledPatchesRearrangeGridCells) {
  auto x = torch::arange(2 * 1 * 9 * 8, torch::kDouble).view({2, 1, 9, 8});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
    const auto out = shuffled_patches(x, g);
    ASSERT_EQ(out.sizes(), x.sizes());
    EXPECT_FALSE(torch::equal(out, x)) << seed;
    // The same multiset of values per image, and the last row (9 = 4 * 2 + 1) stays where it was.
    EXPECT_TRUE(torch::equal(std::get<0>(out.flatten(1).sort(1)), std::get<0>(x.flatten(1).sort(1))));
    EXPECT_TRUE(torch::equal(out.narrow(2, 8, 1), x.narrow(2, 8, 1)));
    // Each 2 x 2 cell of the output is one cell of the input.
    for (int64_t cell = 0; cell < 16; ++cell) {
      const auto piece = out[0][0].narrow(0, (cell / 4) * 2, 2).narrow(1, (cell % 4) * 2, 2);
      bool found = false;
      for (int64_t from = 0; from < 16 && !found; ++from) {
        found = torch::equal(piece, x[0][0].narrow(0, (from / 4) * 2, 2).narrow(1, (from % 4) * 2, 2));
      }
      EXPECT_TRUE(found) << "seed " << seed << " cell " << cell;
    }
  }
  EXPECT_THROW(shuffled_patches(torch::zeros({1, 1, 3, 8})), std::invalid_argument);
}

// The energy-margin term: off by default; on, it adds margin_weight times its value, and it is zero when
// the data's energy is already below margin_in and the outliers' above margin_out.
TEST(Loss, EnergyMarginTermAddsItsWeightedValue) {
  DoubleNet d;
  torch::manual_seed(5);
  auto x = torch::rand({6, 1, 8, 8}, torch::kDouble) * 2 - 1;
  auto y = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  const CosineSchedule schedule;
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(4);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(4);
  auto off = cff_loss(d.f, x, y, schedule, CffLossOptions{}, g1);
  EXPECT_EQ(off.margin.item<double>(), 0.0);
  CffLossOptions on;
  on.margin_weight = 0.5;
  on.margin_in = -1e3;  // unreachable: the in-distribution hinge is active
  on.margin_out = 1e3;  // and so is the outlier hinge
  auto with = cff_loss(d.f, x, y, schedule, on, g2);
  EXPECT_GT(with.margin.item<double>(), 1e5);
  EXPECT_NEAR(with.total.item<double>() - off.total.item<double>(), 0.5 * with.margin.item<double>(),
              1e-9 * with.margin.item<double>());
  CffLossOptions slack = on;
  slack.margin_in = 1e3;
  slack.margin_out = -1e3;
  auto g3 = at::make_generator<at::CPUGeneratorImpl>(4);
  EXPECT_EQ(cff_loss(d.f, x, y, schedule, slack, g3).margin.item<double>(), 0.0);
}
