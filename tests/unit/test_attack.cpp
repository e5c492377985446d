// The attacks of cff/attack.h: on a linear classifier the worst case is known in closed form and the
// attacks must reach it; on a small network every attack stays inside the eps-ball and the pixel range.
#include <cmath>

#include <gtest/gtest.h>

#include "test_helpers.h"

using namespace cff;

namespace {

// f(x) = W x + b on flattened inputs, two classes. Inputs are x = 2p - 1 (mean = std = 0.5), so an L-inf
// perturbation of eps in pixels moves the margin f_y - f_other by at most 2 eps ||w_y - w_other||_1, and an
// L2 one by at most 2 eps ||w_y - w_other||_2 (while the pixel box does not bind).
struct Linear {
  torch::Tensor w, b;
  LogitsFunction f() const {
    return [w = w, b = b](const torch::Tensor &x) { return torch::matmul(x.flatten(1), w.t()) + b; };
  }
  torch::Tensor margin(const torch::Tensor &x, const torch::Tensor &y) const {
    const auto logits = f()(x);
    return logits.gather(1, y.unsqueeze(1)).squeeze(1) - logits.gather(1, (1 - y).unsqueeze(1)).squeeze(1);
  }
};

struct LinearCase {
  Linear model;
  torch::Tensor x, y;
  double dw_l1 = 0, dw_l2 = 0;
};

LinearCase linear_case() {
  torch::manual_seed(5);
  LinearCase c;
  c.model.w = torch::randn({2, 1 * 6 * 6}) * 0.2;
  c.model.b = torch::zeros({2});
  const auto p = torch::rand({64, 1, 6, 6}) * 0.4 + 0.3;  // pixels in [0.3, 0.7]: a 0.05 ball stays in [0, 1]
  c.x = 2 * p - 1;
  c.y = c.model.f()(c.x).argmax(1);  // every image starts correctly classified
  const auto dw = c.model.w[0] - c.model.w[1];
  c.dw_l1 = dw.abs().sum().item<double>();
  c.dw_l2 = dw.norm().item<double>();
  return c;
}

// Pixels of model inputs x = 2p - 1.
torch::Tensor pixels(const torch::Tensor &x) { return (x + 1) / 2; }

}  // namespace

TEST(Attack, LinearWorstCaseIsReachedInLinf) {
  const auto c = linear_case();
  const double eps = 0.05;
  const auto clean_margin = c.model.margin(c.x, c.y);
  const auto worst = clean_margin - 2 * eps * c.dw_l1;  // the closed-form adversarial margin
  for (const std::string spec : {"fgsm:eps=0.05,loss=margin", "pgd-linf:eps=0.05,steps=20,loss=margin", "apgd-ce:eps=0.05,steps=20"}) {
    const auto result = attack(c.model.f(), c.x, c.y, AttackSpec::parse(spec), PixelScale{});
    const auto margin = c.model.margin(result.adversarial, c.y);
    for (int64_t i = 0; i < c.x.size(0); ++i) {
      const double expected = worst[i].item<double>(), got = margin[i].item<double>();
      if (expected > 0) {
        // Cannot be fooled: the best point is the one of highest loss, the corner of the ball.
        EXPECT_NEAR(got, expected, 1e-4) << spec << " image " << i;
        EXPECT_FALSE(result.fooled[i].item<bool>()) << spec << " image " << i;
      } else {
        EXPECT_TRUE(result.fooled[i].item<bool>()) << spec << " image " << i << ": worst-case margin " << expected;
        EXPECT_LE(got, 0.0) << spec;
      }
      EXPECT_GE(got, expected - 1e-4) << spec << ": beyond the worst case, outside the ball";
    }
  }
}

TEST(Attack, LinearWorstCaseIsReachedInL2) {
  const auto c = linear_case();
  const double eps = 0.2;
  const auto worst = c.model.margin(c.x, c.y) - 2 * eps * c.dw_l2;
  const auto result = attack(c.model.f(), c.x, c.y, AttackSpec::parse("pgd-l2:eps=0.2,steps=40,loss=margin"), PixelScale{});
  const auto margin = c.model.margin(result.adversarial, c.y);
  const auto drop = c.model.margin(c.x, c.y) - margin;
  for (int64_t i = 0; i < c.x.size(0); ++i) {
    if (worst[i].item<double>() > 0) {
      EXPECT_NEAR(drop[i].item<double>(), 2 * eps * c.dw_l2, 1e-4) << i;
    } else {
      EXPECT_TRUE(result.fooled[i].item<bool>()) << i;
    }
    const auto delta = pixels(result.adversarial[i]) - pixels(c.x[i]);
    EXPECT_LE(delta.norm().item<double>(), eps + 1e-5);
  }
}

TEST(Attack, EveryAttackStaysInsideTheBallAndThePixelRange) {
  torch::manual_seed(2);
  Classifier net(cff_test::tiny_config(3, 8, 8, 5));
  net->eval();
  freeze(*net);
  LogitsFunction f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
  // Pixels at 0 and 1 as well as inside, so the box binds; a normalisation other than [-1, 1].
  auto p = torch::rand({12, 3, 8, 8});
  p.index_put_({torch::indexing::Slice(0, 4)}, 0.0);
  p.index_put_({torch::indexing::Slice(4, 8)}, 1.0);
  PixelScale scale{{0.3, 0.4, 0.5}, {0.2, 0.25, 0.3}};
  const auto mean = torch::tensor({0.3, 0.4, 0.5}).view({1, 3, 1, 1}), std = torch::tensor({0.2, 0.25, 0.3}).view({1, 3, 1, 1});
  const auto x = (p - mean) / std;
  const auto y = torch::randint(5, {12}, torch::kLong);
  for (const std::string spec : {"fgsm:eps=0.1", "pgd-linf:eps=0.1,steps=5,restarts=2", "pgd-linf:eps=0.1,steps=5,target=random",
                                 "pgd-l2:eps=0.5,steps=5", "apgd-ce:eps=0.1,steps=10", "apgd-t:eps=0.1,steps=5,restarts=3",
                                 "pgd-linf:eps=0.1,steps=5,energy=1"}) {
    const auto parsed = AttackSpec::parse(spec);
    const auto result = attack(f, x, y, parsed, scale);
    ASSERT_EQ(result.adversarial.sizes(), x.sizes()) << spec;
    const auto q = result.adversarial * std + mean;
    EXPECT_GE(q.min().item<double>(), -1e-6) << spec;
    EXPECT_LE(q.max().item<double>(), 1 + 1e-6) << spec;
    if (parsed.kind == AttackKind::pgd_l2) {
      EXPECT_LE((q - p).flatten(1).norm(2, 1).max().item<double>(), parsed.eps + 1e-5) << spec;
    } else {
      EXPECT_LE((q - p).abs().max().item<double>(), parsed.eps + 1e-6) << spec;
    }
    // Fooled means misclassified at the returned point, and the clean errors count as fooled.
    const auto predicted = f(result.adversarial).argmax(1);
    EXPECT_TRUE(torch::equal(result.fooled, predicted != y)) << spec;
    EXPECT_TRUE((result.fooled | (f(x).argmax(1) == y)).all().item<bool>()) << spec;
    // Deterministic for a seed.
    EXPECT_TRUE(torch::equal(attack(f, x, y, parsed, scale).adversarial, result.adversarial)) << spec;
  }
}

TEST(Attack, LossesAreThePublishedOnes) {
  const auto logits = torch::tensor({{3.0, 1.0, 0.5, -1.0}, {0.0, 2.0, 1.0, 0.0}});
  const auto y = torch::tensor({0, 0}, torch::kLong), t = torch::tensor({2, 3}, torch::kLong);
  // margin: max other - f_y
  auto m = attack_loss(logits, y, torch::Tensor(), AttackLoss::margin);
  EXPECT_NEAR(m[0].item<double>(), -2.0, 1e-6);
  EXPECT_NEAR(m[1].item<double>(), 2.0, 1e-6);
  // dlr: -(f_y - max other) / (f_pi1 - f_pi3)
  auto d = attack_loss(logits, y, torch::Tensor(), AttackLoss::dlr);
  EXPECT_NEAR(d[0].item<double>(), -(3.0 - 1.0) / (3.0 - 0.5), 1e-6);
  EXPECT_NEAR(d[1].item<double>(), -(0.0 - 2.0) / (2.0 - 0.0), 1e-6);
  // targeted dlr: -(f_y - f_t) / (f_pi1 - (f_pi3 + f_pi4) / 2)
  auto dt = attack_loss(logits, y, t, AttackLoss::dlr);
  EXPECT_NEAR(dt[0].item<double>(), -(3.0 - 0.5) / (3.0 - (0.5 - 1.0) / 2), 1e-6);
  // ce and its targeted form
  auto ce = attack_loss(logits, y, torch::Tensor(), AttackLoss::ce);
  EXPECT_NEAR(ce[0].item<double>(), -torch::log_softmax(logits, 1)[0][0].item<double>(), 1e-6);
  auto cet = attack_loss(logits, y, t, AttackLoss::ce);
  EXPECT_NEAR(cet[1].item<double>(), torch::log_softmax(logits, 1)[1][3].item<double>(), 1e-6);
  EXPECT_THROW(attack_loss(logits.slice(1, 0, 2), y, torch::Tensor(), AttackLoss::dlr), std::invalid_argument);
}

TEST(Attack, SpecsParseAndBadOnesAreNamed_n) {
  const auto s = AttackSpec::parse("pgd-linf:eps=0.1,steps=20,restarts=2,loss=margin,target=random,energy=0.5,seed=3");
  EXPECT_EQ(s.kind, AttackKind::pgd_linf);
  EXPECT_DOUBLE_EQ(s.eps, 0.1);
  EXPECT_EQ(s.steps, 20);
  EXPECT_EQ(s.restarts, 2);
  EXPECT_EQ(s.loss, AttackLoss::margin);
  EXPECT_TRUE(s.random_target);
  EXPECT_DOUBLE_EQ(s.energy_weight, 0.5);
  EXPECT_EQ(s.seed, 3u);
  EXPECT_EQ(AttackSpec::parse(s.to_string()).to_string(), s.to_string());
  EXPECT_EQ(AttackSpec::parse("apgd-t").loss, AttackLoss::dlr);
  for (const char *kind : {"fgsm", "pgd-l2", "apgd-ce", "apgd-t"}) {
    const auto spec = AttackSpec::parse(kind);
    EXPECT_EQ(AttackSpec::parse(spec.to_string()).to_string(), spec.to_string()) << kind;
  }
  EXPECT_EQ(AttackSpec::parse("fgsm").steps, 1);
  const auto error = [](const std::string &text) {
    try {
      AttackSpec::parse(text);
    } catch (const std::invalid_argument &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("pgd").find("unknown kind 'pgd'"), std::string::npos);
  EXPECT_NE(error("pgd-linf:eps=abc").find("eps='abc' is not a number"), std::string::npos);
  EXPECT_NE(error("pgd-linf:eps=25").find("[0, 1] pixel units"), std::string::npos);
  EXPECT_NE(error("pgd-linf:step=3").find("unknown field 'step'"), std::string::npos);
  EXPECT_NE(error("apgd-ce:loss=margin").find("has its own loss"), std::string::npos);
  EXPECT_NE(error("pgd-linf:steps=0").find("steps must be >= 1"), std::string::npos);
}

TEST(RobustLoss, AdversaryStaysInTheBallAndRaisesItsObjective) {
  torch::manual_seed(8);
  Classifier net(cff_test::tiny_config(1, 8, 8, 4));
  net->eval();
  LogitsFunction f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
  const auto x = torch::rand({16, 1, 8, 8}) * 2 - 1;
  const auto y = torch::randint(4, {16}, torch::kLong);
  namespace F = torch::nn::functional;
  const auto ce = [&](const torch::Tensor &z) {
    torch::NoGradGuard no_grad;
    return F::cross_entropy(f(z), y).item<double>();
  };
  for (bool kl : {false, true}) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto adv = training_adversary(f, x, y, kl, 0.1, 5, 0.025, PixelScale{}, gen);
    EXPECT_LE(((adv - x) / 2).abs().max().item<double>(), 0.1 + 1e-6);
    EXPECT_GE(adv.min().item<double>(), -1 - 1e-6);
    EXPECT_LE(adv.max().item<double>(), 1 + 1e-6);
    if (!kl) {
      EXPECT_GT(ce(adv), ce(x));
    }
    // No parameter gradient is left behind.
    for (const auto &p : net->parameters()) EXPECT_FALSE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  }
}

TEST(RobustLoss, TradesAndWeatAreTheirFormulas) {
  torch::manual_seed(9);
  Classifier net(cff_test::tiny_config(1, 8, 8, 4));
  net->eval();
  LogitsFunction f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
  const auto x = torch::rand({10, 1, 8, 8}) * 2 - 1;
  const auto y = torch::randint(4, {10}, torch::kLong);
  RobustLossOptions o;
  o.steps = 3;
  o.beta = 6.0;
  // The same generator seed gives the same adversarial images, so the terms can be recomputed by hand.
  auto adversarial = [&](bool kl) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
    return training_adversary(f, x, y, kl, o.eps, o.steps, o.eps / 4, o.scale, gen);
  };
  torch::NoGradGuard no_grad;
  const auto log_p = torch::log_softmax(f(x), 1), log_q = torch::log_softmax(f(adversarial(true)), 1);
  const auto kl = (log_p.exp() * (log_p - log_q)).sum(1);
  {
    torch::AutoGradMode enable(true);
    o.mode = "trades";
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
    EXPECT_NEAR(robust_loss(f, x, y, o, gen).total.item<double>(), 6.0 * kl.mean().item<double>(), 1e-5);
    o.mode = "weat";
    gen = at::make_generator<at::CPUGeneratorImpl>(4);
    const auto ce = torch::nn::functional::cross_entropy(f(adversarial(true)), y,
                                                         torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    auto w = 1.0 / torch::log1p(torch::exp(free_energy(f(x)).abs()));
    w = w / w.mean();
    EXPECT_NEAR(robust_loss(f, x, y, o, gen).total.item<double>(), (w * (ce + 6.0 * kl)).mean().item<double>(), 1e-5);
    o.mode = "pgd";
    gen = at::make_generator<at::CPUGeneratorImpl>(4);
    EXPECT_NEAR(robust_loss(f, x, y, o, gen).total.item<double>(),
                torch::nn::functional::cross_entropy(f(adversarial(false)), y).item<double>(), 1e-5);
  }
  // WEAT weights: equal energies weigh 1 each; a larger |U| weighs less.
  const auto w = weat_weights(torch::tensor({-25.0, -25.0, -5.0}));
  EXPECT_NEAR(w[0].item<double>(), w[1].item<double>(), 1e-9);
  EXPECT_LT(w[0].item<double>(), w[2].item<double>());
  EXPECT_NEAR(w.mean().item<double>(), 1.0, 1e-9);
}

// Data-parallel shards (issue 18): the losses of the shards of a batch (rows r, r + W, ...) sum to the whole
// batch's loss and their gradients to its gradient, for every objective, since the draws are the global
// batch's and the means are over it. Three shards of a batch of 7 (the last shard is one row short).
TEST(BatchShards, ShardLossesAndGradientsSumToTheWholeBatchs) {
  set_threads(1);
  torch::manual_seed(3);
  auto net = Classifier(cff_test::tiny_config(1, 8, 8, 4));
  LogitsFunction f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
  cff_test::PrototypeMixture data;
  auto [x, y] = data.draw(7, 11);
  CosineSchedule schedule;
  CffLossOptions cff_options;
  cff_options.force_fraction = 0.5;
  cff_options.margin_weight = 0.1;
  RobustLossOptions robust;
  robust.eps = 0.1;
  robust.steps = 2;
  const auto gradient = [&](const torch::Tensor &loss) {
    net->zero_grad();
    loss.backward();
    std::vector<torch::Tensor> g;
    for (const auto &p : net->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  const auto loss_of = [&](const std::string &kind, const torch::Tensor &xs, const torch::Tensor &ys, const BatchShard &shard) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    if (kind == "cff") return cff_loss(f, xs, ys, schedule, cff_options, gen, shard).total;
    if (kind == "ce") return cross_entropy_loss(f, xs, ys, shard).total;
    robust.mode = kind;
    return robust_loss(f, xs, ys, robust, gen, shard).total;
  };
  for (const std::string kind : {"cff", "ce", "pgd", "trades", "weat"}) {
    const auto whole = loss_of(kind, x, y, {});
    const auto whole_gradient = gradient(whole);
    // WEAT's batch mean of weights needs the other shards: sum_across adds what each shard contributes.
    std::vector<double> raw_sums(3, 0.0);
    double total = 0;
    std::vector<torch::Tensor> summed;
    for (int pass = 0; pass < 2; ++pass) {  // pass 0 collects each shard's WEAT weight sum, pass 1 uses them
      total = 0;
      summed.clear();
      for (int64_t r = 0; r < 3; ++r) {
        BatchShard shard;
        shard.index = r;
        shard.count = 3;
        shard.global = 7;
        shard.sum_across = [&, r](const torch::Tensor &t) {
          raw_sums[r] = t.item<double>();
          double all = 0;
          for (double v : raw_sums) all += v;
          return pass == 0 ? t.clone() : torch::full_like(t, all);
        };
        const auto loss = loss_of(kind, x.slice(0, r, 7, 3), y.slice(0, r, 7, 3), shard);
        total += loss.item<double>();
        const auto g = gradient(loss);
        if (summed.empty()) summed = g;
        else for (size_t i = 0; i < g.size(); ++i) summed[i] += g[i];
      }
    }
    EXPECT_NEAR(total, whole.item<double>(), 1e-5) << kind;
    for (size_t i = 0; i < summed.size(); ++i) {
      EXPECT_TRUE(torch::allclose(summed[i], whole_gradient[i], 1e-4, 1e-6)) << kind << " parameter " << i;
    }
  }
  BatchShard wrong;
  wrong.index = 1;
  wrong.count = 3;
  wrong.global = 7;  // holds rows 1 and 4: 2, not 3
  EXPECT_THROW(cross_entropy_loss(f, x.slice(0, 0, 3), y.slice(0, 0, 3), wrong), std::invalid_argument);
}
