#include <gtest/gtest.h>

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
