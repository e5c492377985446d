// cff::Engine, the torch-free facade the elements call: loading errors, sharing, NaN safety.
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <thread>

#include <gtest/gtest.h>

#include "cff/engine.h"
#include "fixture.h"

using cff_gst_test::kSide;
using cff_gst_test::test_model;

namespace {

// The sample's pixels normalised as the model expects ((p / 255 - 0.5) / 0.5).
std::vector<float> normalised(const cff_gst_test::Sample &s) {
  std::vector<float> x(s.pixels.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(s.pixels[i] / 127.5 - 1.0);
  return x;
}

}  // namespace

TEST(Engine, InfoComesFromTheModelFile) {
  const auto &m = test_model();
  auto engine = cff::Engine::acquire(m.path, "cpu", 2);
  const auto &info = engine->info();
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.height, kSide);
  EXPECT_EQ(info.width, kSide);
  EXPECT_EQ(info.num_classes, 10);
  EXPECT_EQ(info.labels, m.labels);
  EXPECT_EQ(info.ood_recommended, "energy");
  // The fixture fits every score libcff has (cff/ood.h), in its order.
  const std::vector<std::string> names = {"energy", "msp", "mahalanobis", "mahalanobis-moments", "complexity-energy"};
  ASSERT_EQ(info.ood_scores.size(), names.size());
  for (size_t i = 0; i < info.ood_scores.size(); ++i) {
    EXPECT_EQ(info.ood_scores[i].name, names[i]);
    EXPECT_TRUE(info.ood_scores[i].calibrated) << info.ood_scores[i].name;
  }
  EXPECT_DOUBLE_EQ(info.ood_scores[0].threshold, m.threshold);
  ASSERT_EQ(info.mean.size(), 1u);
  EXPECT_DOUBLE_EQ(info.mean[0], 0.5);
  EXPECT_DOUBLE_EQ(info.std[0], 0.5);
  // Classes by index or by label, case-insensitively; anything else names none.
  EXPECT_EQ(info.find_class("3"), 3);
  EXPECT_EQ(info.find_class(m.labels[7]), 7);
  std::string upper = m.labels[2];
  for (auto &c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(info.find_class(upper), 2);
  for (const char *none : {"10", "-2", "", "3x", "no such class"}) EXPECT_EQ(info.find_class(none), -1) << none;
}

TEST(Engine, OneSharedInstancePerFileAndDevice) {
  const auto &m = test_model();
  auto a = cff::Engine::acquire(m.path, "cpu", -1);
  auto b = cff::Engine::acquire(m.path, "auto", -1);  // auto is cpu on this machine
  auto c = cff::Engine::acquire(m.directory + "/./fashion.cff", "cpu", -1);
  EXPECT_EQ(a.get(), c.get());
  if (b->info().device.rfind("cpu", 0) == 0) {
    EXPECT_EQ(a.get(), b.get());
  }
}

TEST(Engine, ClassifiesLikeLibcffDirectly) {
  const auto &m = test_model();
  auto engine = cff::Engine::acquire(m.path, "cpu", -1);
  const int n = 32;
  std::vector<float> batch;
  for (int i = 0; i < n; ++i) {
    auto x = normalised(m.samples[static_cast<size_t>(i)]);
    batch.insert(batch.end(), x.begin(), x.end());
  }
  auto results = engine->classify(batch.data(), n, 3);
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto &r = results[static_cast<size_t>(i)];
    const auto &s = m.samples[static_cast<size_t>(i)];
    EXPECT_FALSE(r.non_finite);
    EXPECT_EQ(r.class_id, s.reference_class);
    EXPECT_EQ(r.label, m.labels[static_cast<size_t>(s.reference_class)]);
    EXPECT_NEAR(r.confidence, s.reference_confidence, 1e-4);
    EXPECT_NEAR(r.energy, s.reference_energy, 1e-3);
    ASSERT_EQ(r.top_k.size(), 3u);
    EXPECT_EQ(r.top_k[0].class_id, r.class_id);
    EXPECT_GE(r.top_k[0].probability, r.top_k[1].probability);
    EXPECT_GE(r.top_k[1].probability, r.top_k[2].probability);
  }
}

TEST(Engine, TopKIsClampedAndEmptyBatchesAreFine) {
  const auto &m = test_model();
  auto engine = cff::Engine::acquire(m.path, "cpu", -1);
  auto x = normalised(m.samples[0]);
  EXPECT_EQ(engine->classify(x.data(), 1, 0)[0].top_k.size(), 1u);
  auto all = engine->classify(x.data(), 1, 1000)[0].top_k;
  ASSERT_EQ(all.size(), 10u);
  double total = 0;
  for (const auto &e : all) total += e.probability;
  EXPECT_NEAR(total, 1.0, 1e-6);
  EXPECT_TRUE(engine->classify(nullptr, 0, 3).empty());
}

TEST(Engine, NullOrNegativeBatch_n) {
  auto engine = cff::Engine::acquire(test_model().path, "cpu", -1);
  EXPECT_THROW(engine->classify(nullptr, 1, 3), std::invalid_argument);
  float x = 0;
  EXPECT_THROW(engine->classify(&x, -1, 3), std::invalid_argument);
}

TEST(Engine, NonFiniteInputIsOutOfDistributionNeverACrash_n) {
  const auto &m = test_model();
  auto engine = cff::Engine::acquire(m.path, "cpu", -1);
  const size_t d = kSide * kSide;
  std::vector<float> batch;
  for (int i = 0; i < 4; ++i) {
    auto x = normalised(m.samples[static_cast<size_t>(i)]);
    batch.insert(batch.end(), x.begin(), x.end());
  }
  batch[1 * d + 17] = std::numeric_limits<float>::quiet_NaN();
  batch[2 * d + 300] = std::numeric_limits<float>::infinity();
  std::vector<float> all_nan(d, std::numeric_limits<float>::quiet_NaN());
  batch.insert(batch.end(), all_nan.begin(), all_nan.end());
  auto results = engine->classify(batch.data(), 5, 3);
  ASSERT_EQ(results.size(), 5u);
  for (int i : {1, 2, 4}) {
    const auto &r = results[static_cast<size_t>(i)];
    EXPECT_TRUE(r.non_finite) << i;
    EXPECT_TRUE(std::isinf(r.energy) && r.energy > 0) << i;
    EXPECT_EQ(r.class_id, -1);
    EXPECT_TRUE(r.top_k.empty());
    for (int score = 0; score < static_cast<int>(engine->info().ood_scores.size()); ++score) {
      EXPECT_TRUE(cff::is_out_of_distribution(r, score, std::numeric_limits<double>::infinity()));
    }
  }
  // The finite images in the same batch are unaffected (GroupNorm is per image).
  for (int i : {0, 3}) {
    const auto &r = results[static_cast<size_t>(i)];
    EXPECT_FALSE(r.non_finite);
    EXPECT_EQ(r.class_id, m.samples[static_cast<size_t>(i)].reference_class);
    EXPECT_NEAR(r.energy, m.samples[static_cast<size_t>(i)].reference_energy, 1e-3);
  }
}

TEST(Engine, ConcurrentCallersGetConsistentResults) {
  const auto &m = test_model();
  auto engine = cff::Engine::acquire(m.path, "cpu", -1);
  auto x = normalised(m.samples[5]);
  const double expected = engine->classify(x.data(), 1, 1)[0].energy;
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (std::abs(engine->classify(x.data(), 1, 1)[0].energy - expected) > 1e-5) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto &t : threads) t.join();
  for (int count : mismatches) EXPECT_EQ(count, 0);
}

TEST(Engine, MissingFile_n) {
  const std::string path = cff_gst_test::temporary_path("does-not-exist.cff");
  try {
    cff::Engine::acquire(path, "cpu", -1);
    FAIL() << "no exception";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Engine, CorruptFile_n) {
  const std::string path = cff_gst_test::temporary_path("corrupt-engine.cff");
  std::ifstream in(test_model().path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    cff::Engine::acquire(path, "cpu", -1);
    FAIL() << "no exception";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Engine, BadDevice_n) {
  EXPECT_THROW(cff::Engine::acquire(test_model().path, "tpu", -1), std::runtime_error);
  EXPECT_THROW(cff::Engine::acquire(test_model().path, "cuda:7", -1), std::runtime_error);
}
