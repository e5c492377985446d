#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "cff/device.h"
#include "cff/ood.h"

using namespace cff;

TEST(Ood, AurocPerfectChanceAndTies) {
  EXPECT_DOUBLE_EQ(auroc({1, 2, 3}, {4, 5, 6}), 1.0);
  EXPECT_DOUBLE_EQ(auroc({4, 5, 6}, {1, 2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(auroc({1, 1}, {1, 1}), 0.5);
  // One out-score (2.5) beats two of three in-scores; the other beats all three: (2 + 3) / 6.
  EXPECT_NEAR(auroc({1, 2, 3}, {2.5, 4}), 5.0 / 6.0, 1e-12);
  EXPECT_THROW(auroc({}, {1}), std::invalid_argument);
}

TEST(Ood, ThresholdKeepsRequestedFraction) {
  std::vector<double> in;
  for (int i = 1; i <= 100; ++i) in.push_back(i);
  EXPECT_DOUBLE_EQ(calibrate_threshold(in, 0.95), 95.0);
  EXPECT_DOUBLE_EQ(calibrate_threshold(in, 1.0), 100.0);
  // FPR at 95% TPR: OOD scores at or below 95 pass as in-distribution.
  EXPECT_DOUBLE_EQ(fpr_at_tpr(in, {50, 96, 97, 200}), 0.25);
}

TEST(Ood, AuprPerfectAndWorst) {
  EXPECT_DOUBLE_EQ(aupr({1, 2}, {3, 4}), 1.0);
  EXPECT_LT(aupr({3, 4}, {1, 2}), 0.6);
}

TEST(Ood, MaxSoftmaxScore) {
  auto s = max_softmax_score(torch::tensor({{10.0, 0.0}, {0.0, 0.0}}));
  EXPECT_LT(s[0].item<double>(), 1e-3);
  EXPECT_NEAR(s[1].item<double>(), 0.5, 1e-6);
}

namespace {

// Synthetic OodInputs: K well-separated classes in logits, penultimate and moment space (each feature a
// class centre plus unit noise), complexity around 3 bits. `shift` moves every feature off the classes
// and shrinks the logits: a planted out-of-distribution set.
struct Planted {
  OodInputs inputs;
  torch::Tensor labels;
};

Planted planted_inputs(int64_t n, int64_t k, bool out, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Planted p;
  p.labels = torch::randint(0, k, {n}, gen, torch::kLong);
  const auto centres = torch::eye(k, 16, torch::kDouble) * 8.0;
  auto features = [&](int64_t f) {
    auto x = centres.slice(1, 0, f).index_select(0, p.labels) + torch::randn({n, f}, gen, torch::kDouble);
    return out ? x * 0.2 + 4.0 : x;
  };
  p.inputs.penultimate = features(16);
  p.inputs.moments = features(12);
  p.inputs.logits = torch::one_hot(p.labels, k).to(torch::kDouble) * (out ? 0.5 : 12.0) +
                    torch::randn({n, k}, gen, torch::kDouble);
  p.inputs.complexity = torch::randn({n}, gen, torch::kDouble) * 0.5 + 3.0;
  return p;
}

}  // namespace

TEST(OodDetector, EveryScoreRanksAPlantedSetAboveTheData) {
  const auto train = planted_inputs(3000, 4, false, 1), holdout = planted_inputs(2000, 4, false, 2),
             test = planted_inputs(1000, 4, false, 3), planted = planted_inputs(1000, 4, true, 4);
  const auto d = OodDetector::fit(train.inputs, train.labels, 4, holdout.inputs, {});
  EXPECT_EQ(d.available(), ood_score_names());
  for (const auto &name : ood_score_names()) {
    const double a = auroc(to_vector(d.score(name, test.inputs)), to_vector(d.score(name, planted.inputs)));
    EXPECT_GT(a, 0.95) << name;
  }
  EXPECT_THROW(OodDetector::energy_only(std::nullopt).score("mahalanobis", test.inputs), std::invalid_argument);
  EXPECT_THROW(d.score("mahalanobis", OodInputs{test.inputs.logits, {}, {}, {}}), std::invalid_argument);
}

TEST(OodDetector, CalibrationKeeps95PercentOfHeldOutImages) {
  const auto train = planted_inputs(3000, 4, false, 5), holdout = planted_inputs(2000, 4, false, 6),
             fresh = planted_inputs(4000, 4, false, 7);
  const auto d = OodDetector::fit(train.inputs, train.labels, 4, holdout.inputs, {});
  for (const auto &name : ood_score_names()) {
    const double t = d.threshold(name).value();
    auto kept = [t](const std::vector<double> &v) {
      return static_cast<double>(std::count_if(v.begin(), v.end(), [t](double s) { return s <= t; })) / v.size();
    };
    EXPECT_NEAR(kept(to_vector(d.score(name, holdout.inputs))), 0.95, 0.001) << name;
    // Unseen images of the same distribution: 95% +- 1%.
    EXPECT_NEAR(kept(to_vector(d.score(name, fresh.inputs))), 0.95, 0.01) << name;
  }
  // Without held-out images nothing is calibrated.
  EXPECT_FALSE(OodDetector::fit(train.inputs, train.labels, 4, {}, {}).threshold("energy").has_value());
}

TEST(OodDetector, JsonAndTensorsRoundTripAndOlderFilesReadAsEnergyOnly) {
  const auto train = planted_inputs(500, 3, false, 8), holdout = planted_inputs(300, 3, false, 9);
  auto d = OodDetector::fit(train.inputs, train.labels, 3, holdout.inputs, {});
  d.set_recommended("mahalanobis-moments");
  // Older readers see the energy's threshold where they always did; the recommendation has its own key.
  EXPECT_EQ(d.to_json()["score"], "energy");
  EXPECT_DOUBLE_EQ(d.to_json()["threshold"].get<double>(), d.threshold("energy").value());
  EXPECT_EQ(d.to_json()["recommended"], "mahalanobis-moments");
  // The class models must fit the network they are loaded with.
  EXPECT_NO_THROW(d.check_shapes(3, 16, 12));
  EXPECT_THROW(d.check_shapes(4, 16, 12), std::invalid_argument);
  EXPECT_THROW(d.check_shapes(3, 32, 12), std::invalid_argument);
  auto back = OodDetector::from_json(d.to_json());
  EXPECT_EQ(back.available(), (std::vector<std::string>{"energy", "msp", "complexity-energy"}));  // no tensors yet
  back.attach_tensors(d.tensors());
  EXPECT_EQ(back.available(), ood_score_names());
  EXPECT_EQ(back.recommended(), "mahalanobis-moments");
  for (const auto &name : ood_score_names()) {
    EXPECT_DOUBLE_EQ(back.threshold(name).value(), d.threshold(name).value()) << name;
    EXPECT_TRUE(torch::allclose(back.score(name, holdout.inputs), d.score(name, holdout.inputs))) << name;
  }
  // A listed score whose tensors are missing, an unknown score, or a stray tensor are refused.
  auto missing = OodDetector::from_json(d.to_json());
  EXPECT_THROW(missing.attach_tensors({}), std::invalid_argument);
  auto j = d.to_json();
  j["scores"]["sharpness"] = {{"threshold", 1.0}};
  EXPECT_THROW(OodDetector::from_json(j), std::invalid_argument);
  auto stray = d.tensors();
  stray["ood/other/means"] = torch::zeros({3, 2});
  EXPECT_THROW(OodDetector::from_json(d.to_json()).attach_tensors(stray), std::invalid_argument);

  // What cff-train wrote before the fitted scores.
  const auto old = OodDetector::from_json({{"score", "free_energy"}, {"threshold", -7.5}, {"calibrated", true}, {"keep_rate", 0.95}});
  EXPECT_EQ(old.available(), (std::vector<std::string>{"energy", "msp"}));
  EXPECT_EQ(old.recommended(), "energy");
  EXPECT_DOUBLE_EQ(old.threshold("energy").value(), -7.5);
  EXPECT_FALSE(old.threshold("msp").has_value());
  EXPECT_EQ(old.fit_images(), 0);
  EXPECT_FALSE(OodDetector::from_json({{"score", "free_energy"}, {"calibrated", false}}).threshold("energy").has_value());
}

TEST(OodDetector, ImageComplexityOrdersFlatStrokesAndNoise) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto flat = torch::full({1, 1, 28, 28}, 0.3);
  auto strokes = torch::full({1, 1, 28, 28}, -1.0);
  strokes.slice(2, 5, 23).slice(3, 12, 15).fill_(1.0);  // a bar on black
  strokes.slice(2, 12, 15).slice(3, 5, 23).fill_(1.0);
  auto noise = torch::rand({1, 1, 28, 28}, gen) * 2 - 1;
  const auto c = image_complexity(torch::cat({flat, strokes, noise}), {0.5}, {0.5});
  EXPECT_LT(c[0].item<double>(), 0.1);  // one residual value after the first pixel
  EXPECT_LT(c[1].item<double>(), 1.5);
  EXPECT_GT(c[2].item<double>(), 7.0);   // 784 samples of a near-uniform residual over 511 values
  EXPECT_THROW(image_complexity(flat, {0.5, 0.5}, {0.5, 0.5}), std::invalid_argument);
}

TEST(GaussianClassModel, RejectsBadShapesAndEmptyClasses) {
  EXPECT_THROW(GaussianClassModel::fit(torch::zeros({4, 3}), torch::zeros({4}, torch::kLong), 2), std::invalid_argument);
  EXPECT_THROW(GaussianClassModel(torch::zeros({2, 3}), torch::zeros({2, 2})), std::invalid_argument);
  EXPECT_THROW(GaussianClassModel(torch::full({2, 3}, NAN), torch::eye(3)), std::invalid_argument);
}

TEST(Device, ParsesSpecs) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  const auto automatic = parse_device("auto");
  EXPECT_TRUE(automatic.is_cpu() || automatic.is_cuda());
  for (const char *bad : {"gpu", "cuda:x", "cuda:", "cuda:1234", "", "cpu:0"}) {
    try {
      parse_device(bad);
      FAIL() << "accepted " << bad;
    } catch (const std::invalid_argument &e) {
      EXPECT_NE(std::string(e.what()).find("expected auto, cpu, cuda or cuda:N"), std::string::npos) << e.what();
    }
  }
  if (!torch::cuda::is_available()) {
    try {
      parse_device("cuda:0");
      FAIL();
    } catch (const std::invalid_argument &e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA"), std::string::npos);
    }
  }
}

TEST(Device, SetsThreads) {
  set_threads(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  set_threads(2);
  EXPECT_EQ(at::get_num_threads(), 2);
  set_threads(1);  // the other suites run beside this one
}

#if defined(__GLIBC__)
TEST(Device, KeepsFreedMemoryForReuse) {
  // A 24 MiB block is above glibc's default mmap threshold, so by default it is mapped on its own and
  // unmapped on free. Once freed memory is kept, it comes from the heap and stays there, free for reuse.
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's allocator replaces glibc's and ignores its settings";
#endif
  // Measured against the heap's state while the block is held: free space the heap had before may serve part
  // of the block, so the free space before the malloc is no baseline (a fresh clone's run once failed on it).
  // Without the call both checks fail in a fresh process (the block is mapped, and unmapped on free).
  ASSERT_TRUE(keep_freed_memory());
  const size_t block = 24u << 20;
  const size_t mapped_before = mallinfo2().hblkhd;
  void *p = std::malloc(block);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, block);
  ASSERT_EQ(static_cast<volatile char *>(p)[block - 1], 1);  // a volatile read: the compiler keeps the block
  const auto held = mallinfo2();
  std::free(p);
  const auto after = mallinfo2();  // before anything else allocates
  EXPECT_LT(held.hblkhd, mapped_before + block) << "the block was mapped on its own";
  EXPECT_GE(after.fordblks, held.fordblks + block) << "the freed block left the heap";
}
#endif
